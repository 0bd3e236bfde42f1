"""--optuna N: Optuna's TPE sampler proposes each trial's parameters, its median pruner may stop
a trial at a report with step=, and the study lives in DIR/optuna.db (SQLite, Optuna's RDB
storage, study "phalanx-sweep"), so a rerun resumes it and users can go on with Optuna's own
API: optuna.load_study(study_name="phalanx-sweep", storage="sqlite:///DIR/optuna.db").
"""

from __future__ import annotations

import os
import threading

from .groups import Slot
from .space import format_value

STUDY_NAME = "phalanx-sweep"


def import_optuna():
    try:
        import optuna
    except ImportError as e:
        raise ImportError(
            "phalanx sweep --optuna needs the optuna package, which is not installed "
            f"(pip install optuna): {e}"
        ) from e
    return optuna


def storage_url(out: str) -> str:
    return "sqlite:///" + os.path.join(out, "optuna.db")


def run_optuna(sw, grids, ranges, n_trials: int, seed: int, sampler, pruner) -> None:
    optuna = import_optuna()
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {g.name: CategoricalDistribution(list(g.values)) for g in grids}
    for r in ranges:
        if r.integer:
            space[r.name] = IntDistribution(int(r.low), int(r.high), log=r.log)
        else:
            space[r.name] = FloatDistribution(r.low, r.high, log=r.log)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage_url(sw.out),
        direction="maximize" if sw.mode == "max" else "minimize",
        sampler=sampler or optuna.samplers.TPESampler(seed=seed),
        pruner=pruner or optuna.pruners.MedianPruner(),
        load_if_exists=True,
    )
    finished = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            finished += 1
        elif t.state == TrialState.RUNNING:  # its sweep was killed: it will never report
            study.tell(t.number, state=TrialState.FAIL)
    remaining = max(0, n_trials - finished)
    sw.total = remaining
    if finished:
        sw.say(f"resuming: {finished} of {n_trials} trials already finished in {sw.out}")
    lock = threading.Lock()  # Optuna's ask/tell and its storage from one thread at a time
    started = [0]

    def worker(slot: Slot) -> None:
        while not sw.stopping:
            with lock:
                if started[0] >= remaining:
                    return
                started[0] += 1
                trial = study.ask(space)
            config = {name: format_value(trial.params[name]) for name in sw.results.params}

            def on_report(step, metrics, trial=trial) -> bool:
                value = metrics.get(sw.metric)
                if step is None or not isinstance(value, (int, float)):
                    return False
                with lock:
                    trial.report(float(value), step)
                    return trial.should_prune()

            outcome = sw.run_trial(trial.number, config, slot, on_report)
            with lock:
                if outcome is None or outcome.status == "stopped":
                    study.tell(trial, state=TrialState.FAIL)
                elif outcome.status == "pruned":
                    study.tell(trial, state=TrialState.PRUNED)
                elif outcome.status == "ok" and sw.metric in outcome.best:
                    study.tell(trial, outcome.best[sw.metric])
                else:
                    study.tell(trial, state=TrialState.FAIL)

    sw.drive(worker)
