"""phalanx.sweep: runs the trials of a sweep on its slots (one after another, or side by side
with parallel=P) and keeps DIR/results.csv. Grid and random sweeps know every configuration up
front; Optuna asks its TPE sampler for the next one and may prune a trial at a report.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Sequence

from .results import Results
from .space import (
    SweepError,
    check_names,
    configurations,
    format_value,
    grid_from_api,
    script_args,
    space_from_api,
)
from .trial import Trial


def _count(value, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepError(f"{what} must be a positive number of trials, got {value!r}")
    return value


class _Sweep:
    def __init__(self, script, metric, mode, out, params, slots, script_argv, launch_opts, quiet):
        self.script = [script, *script_argv]
        self.metric, self.mode, self.out = metric, mode, out
        self.slots = slots
        self.launch_opts = list(launch_opts)
        self.quiet = quiet
        self.results = Results(out, params, metric, mode)
        self.lock = threading.Lock()
        self._say_lock = threading.Lock()  # trials' threads report at once: whole lines only
        self.running: set[Trial] = set()
        self.stopping = False
        self.total = 0
        self.finished = 0

    def say(self, text: str) -> None:
        if not self.quiet:
            # One write per line under a lock: print() writes the text and the newline
            # separately, so two trials starting together could share a line.
            with self._say_lock:
                sys.stdout.write(f"phalanx sweep: {text}\n")
                sys.stdout.flush()

    def run_trial(self, number: int, config: dict, slot, on_report=None):
        trial = Trial(
            number,
            os.path.join(self.out, "trials", str(number)),
            [*slot.launcher_args, *self.launch_opts],
            [*self.script, *script_args(config)],
            self.mode,
            on_report,
        )
        shown = " ".join(f"{k}={v}" for k, v in config.items())
        with self.lock:
            if self.stopping:
                return None
            self.running.add(trial)
        self.say(f"trial {number} started on {slot.hosts}: {shown}")
        outcome = trial.run()
        with self.lock:
            self.running.discard(trial)
        if outcome.status == "ok" and self.metric not in outcome.last:
            outcome.status = "failed"
            outcome.error = (
                f"the script never reported {self.metric!r} "
                f"(phalanx.report({self.metric}=...) on rank 0)"
            )
        with self.lock:
            self.results.add(number, config, outcome, slot.hosts)
            self.finished += 1
            value = outcome.best.get(self.metric)
            what = f"{self.metric} best {format_value(value)}" if value is not None else ""
            detail = f": {outcome.error}" if outcome.error else ""
            self.say(
                f"trial {number} {outcome.status}{detail} {what} ({outcome.seconds:.1f} s) "
                f"[{self.finished}/{self.total}]"
            )
        return outcome

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
            trials = list(self.running)
        for t in trials:
            t.stop("stopped")

    def drive(self, worker) -> None:
        """Runs worker(slot) on a thread per slot until all return; Ctrl-C stops every trial
        (each launcher stops its ranks), waits for them to be recorded, then raises
        KeyboardInterrupt."""
        # Waiting on an Event, not Thread.join: a join interrupted by Ctrl-C can leave the
        # thread looking finished (CPython gh-90882), and the sweep would exit while a worker
        # still records its trial.
        left = [len(self.slots)]
        all_done = threading.Event()

        def run(slot) -> None:
            try:
                worker(slot)
            finally:
                with self.lock:
                    left[0] -= 1
                    if left[0] == 0:
                        all_done.set()

        for s in self.slots:
            threading.Thread(target=run, args=(s,), daemon=True).start()
        try:
            while not all_done.wait(0.2):
                pass
        except BaseException:
            self.say("interrupted: stopping the running trials")
            self.stop_all()
            while not all_done.wait(0.2):
                pass
            raise


def _run_listed(sw: _Sweep, configs: list[dict]) -> None:
    todo: queue.Queue = queue.Queue()
    rows = sw.results.rows
    spare = max(list(rows) + [len(configs) - 1]) + 1  # numbers no row uses
    for number, config in enumerate(configs):
        if sw.results.done(config) is not None:
            continue
        row = rows.get(number)
        if row is not None and any(row.get(k) != v for k, v in config.items()):
            # an earlier run with other settings used this number: keep its row
            number, spare = spare, spare + 1
        todo.put((number, config))
    sw.total = todo.qsize()
    skipped = len(configs) - sw.total
    if skipped:
        sw.say(f"resuming: {skipped} of {len(configs)} trials already finished in {sw.out}")

    def worker(slot) -> None:
        while not sw.stopping:
            try:
                number, config = todo.get_nowait()
            except queue.Empty:
                return
            sw.run_trial(number, config, slot)

    sw.drive(worker)


def sweep(
    script: str,
    *,
    metric: str,
    out: str,
    mode: str = "min",
    grid=None,
    random: int | None = None,
    space=None,
    optuna: int | None = None,
    nproc: int | None = None,
    hosts: str | None = None,
    group_size: int | None = None,
    parallel: int | None = None,
    script_args: Sequence[str] = (),
    launch_opts: Sequence[str] | str = (),
    seed: int = 0,
    sampler=None,
    pruner=None,
    quiet: bool = False,
) -> list[dict]:
    """Runs `script` under the launcher once per trial with `--NAME VALUE` appended for each
    swept parameter, and returns the rows of DIR/results.csv, best first (see
    docs/experiments.md). The options are those of `phalanx sweep`; `grid` is
    {name: [values]}, `space` {name: (lo, hi) or (lo, hi, 'log')}; `sampler` and `pruner`
    replace Optuna's TPE sampler and median pruner."""
    if not isinstance(metric, str) or not metric.isidentifier():
        raise SweepError(f"metric must be the name a script reports, got {metric!r}")
    if mode not in ("min", "max"):
        raise SweepError(f"mode must be 'min' or 'max', got {mode!r}")
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise SweepError(f"out must be a directory path, got {out!r}")
    out = os.path.abspath(os.fspath(out))
    grids, ranges = grid_from_api(grid), space_from_api(space)
    params = check_names(grids, ranges)
    random, optuna = _count(random, "random"), _count(optuna, "optuna")
    if random is not None and optuna is not None:
        raise SweepError("give random=N or optuna=N, not both")
    if ranges and random is None and optuna is None:
        raise SweepError("a --space range needs --random N or --optuna N to draw from it")
    if random is not None and not ranges:
        raise SweepError("--random N draws from --space ranges; none given")
    if not params:
        raise SweepError("nothing to sweep: give --grid NAME=V1,V2 or --space NAME=LO:HI")
    if isinstance(launch_opts, str):
        import shlex

        launch_opts = shlex.split(launch_opts)
    if not os.path.isfile(script) and hosts is None and "--cwd" not in launch_opts:
        raise SweepError(f"script {script!r} not found")
    if optuna is not None:
        from .optuna_search import import_optuna

        import_optuna()  # the ImportError before anything starts
    from .groups import plan_slots  # (imports the launcher: only when a sweep runs)

    os.makedirs(out, exist_ok=True)
    slots = plan_slots(out, nproc, hosts, group_size, parallel)
    sw = _Sweep(script, metric, mode, out, params, slots, script_args, launch_opts, quiet)
    t0 = time.monotonic()
    if optuna is not None:
        from .optuna_search import run_optuna

        run_optuna(sw, grids, ranges, optuna, seed, sampler, pruner)
    else:
        _run_listed(sw, configurations(grids, ranges, random or 1, seed))
    if not quiet:
        print(
            f"\nphalanx sweep: {len(sw.results.rows)} trials in {out}/results.csv "
            f"({time.monotonic() - t0:.0f} s this run), ranked by {metric} ({mode}):"
        )
        print(sw.results.table(), flush=True)
    sys.stdout.flush()
    return sw.results.ranked()
