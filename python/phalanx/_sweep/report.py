"""phalanx.report: how a script tells a sweep its metrics.

Under `phalanx sweep` the launcher gives every rank PHALANX_SWEEP_TRIAL; rank 0 then prints
one marker line per report on its stdout, which the launcher forwards (through ssh for
phones) and the sweep reads. Output is the one channel every rank already has to the
sweep, wherever it runs, so reporting needs no file, port or store of its own.
"""

from __future__ import annotations

import json
import os
import sys

from ..utils.metrics import _check_step, metric_value

MARKER = "@phalanx.report "
TRIAL_ENV = "PHALANX_SWEEP_TRIAL"


def report(step: int | None = None, **metrics) -> None:
    """Reports metrics (numbers or one-element tensors) to the sweep running this script,
    with `step=` for intermediate values (Optuna's pruning compares trials at equal steps).
    Only rank 0's reports count; outside a sweep this checks its arguments and does nothing."""
    step = _check_step(step)
    if not metrics:
        raise ValueError("phalanx.report: no metrics given (e.g. report(accuracy=0.91))")
    values = {
        name: metric_value(name, v, "phalanx.report: metric", allow_str=False)
        for name, v in metrics.items()
    }
    trial = os.environ.get(TRIAL_ENV)
    if not trial or os.environ.get("RANK", "0") != "0":
        return
    text = json.dumps({"trial": trial, "step": step, "metrics": values})
    sys.stdout.write(f"{MARKER}{text}\n")
    sys.stdout.flush()


def parse_report(line: str, trial: str) -> tuple[int | None, dict] | None:
    """(step, metrics) if `line` (as the launcher forwarded it, with its prefix) is a report of
    `trial`, else None."""
    at = line.find(MARKER)
    if at < 0:
        return None
    try:
        data = json.loads(line[at + len(MARKER) :])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("trial") != trial:
        return None
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        return None
    return data.get("step"), metrics
