"""A dependency-free metrics logger: one record per `log()` call, appended to a JSON-lines or
CSV file and flushed at once, so a crashed or killed run keeps every record it logged and a
notebook can plot the file while the run goes on.

    from phalanx.utils.metrics import MetricsLogger, read_metrics

    with MetricsLogger("runs/fmnist.jsonl") as log:      # or "runs/fmnist.csv"
        log.log(step=epoch, train_loss=0.41, test_acc=0.87)
    rows = read_metrics("runs/fmnist.jsonl")             # [{"step": 1, "time": ..., ...}]

Every record has `time` (Unix seconds) and `step` (None when not given) besides its metrics.
A CSV file's columns are the union of every record's keys: when a record brings a new key, the
file is rewritten with the wider header (rare: metrics are logged a few times an epoch).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time

__all__ = ["MetricsLogger", "read_metrics", "metric_value"]

_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_FIXED = ("step", "time")


def metric_value(name: str, value, what: str = "metric", allow_str: bool = True):
    """`value` as a float (numbers, numpy scalars, one-element tensors) or a str; TypeError
    naming `name` and the value otherwise."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()  # numpy scalar, phalanx/torch tensor of one element
        except (ValueError, RuntimeError) as e:
            raise TypeError(
                f"{what} {name!r} must be a single number, got {value!r}: {e}"
            ) from None
    kinds = (int, float, str) if allow_str else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{what} {name!r} must be a number, got {type(value).__name__} {value!r}")
    return value if isinstance(value, str) else float(value)


def _check_step(step):
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        if hasattr(step, "__index__") and not isinstance(step, bool):
            return int(step.__index__())
        raise TypeError(f"step must be an int or None, got {type(step).__name__} {step!r}")
    return step


class MetricsLogger:
    """Appends one record per log() call to `path` (.jsonl/.json/.ndjson or .csv, or
    `format="jsonl"|"csv"`). `append=False` starts the file afresh."""

    def __init__(self, path, *, format: str | None = None, append: bool = True):
        self.path = os.fspath(path)
        if format is None:
            ext = os.path.splitext(self.path)[1].lower()
            if ext not in _FORMATS:
                raise ValueError(
                    f"MetricsLogger: cannot tell the format of {self.path!r} from its "
                    f"extension {ext!r}; name it .jsonl or .csv, or pass format='jsonl'|'csv'"
                )
            format = _FORMATS[ext]
        if format not in ("jsonl", "csv"):
            raise ValueError(f"MetricsLogger: format must be 'jsonl' or 'csv', got {format!r}")
        self.format = format
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        if not append and os.path.exists(self.path):
            os.remove(self.path)
        self._columns: list[str] = []
        # A run killed mid-write leaves a partial last line: start ours on a line of its own.
        self._newline_first = False
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if format == "jsonl" and exists:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                self._newline_first = f.read(1) != b"\n"
        if format == "csv" and os.path.exists(self.path):
            with open(self.path, newline="") as f:
                self._columns = next(csv.reader(f), [])
        self._closed = False

    def log(self, step: int | None = None, **metrics) -> dict:
        """Writes {step, time, **metrics}; returns the record written."""
        return self.log_dict(metrics, step=step)

    def log_dict(self, metrics: dict, step: int | None = None) -> dict:
        if self._closed:
            raise ValueError(f"MetricsLogger({self.path!r}) is closed")
        if not metrics:
            raise ValueError("MetricsLogger.log: no metrics given")
        record = {"step": _check_step(step), "time": time.time()}
        for name, value in metrics.items():
            if not isinstance(name, str) or name in _FIXED:
                raise ValueError(f"MetricsLogger.log: bad metric name {name!r}")
            record[name] = metric_value(name, value)
        if self.format == "jsonl":
            self._append_jsonl(record)
        else:
            self._append_csv(record)
        return record

    def _append_jsonl(self, record: dict) -> None:
        # NaN and infinities as JSON's null would lose them; Python's json reads them back.
        with open(self.path, "a") as f:
            f.write(("\n" if self._newline_first else "") + json.dumps(record) + "\n")
        self._newline_first = False

    def _append_csv(self, record: dict) -> None:
        new = [k for k in record if k not in self._columns]
        if new and self._columns:  # a wider header: rewrite the file with every old row
            rows = read_metrics(self.path, format="csv", convert=False)
            self._columns += new
            tmp = self.path + ".tmp"
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, self._columns)
                w.writeheader()
                w.writerows(rows)
            os.replace(tmp, self.path)
        elif new:
            self._columns = list(record)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self._columns)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self._columns).writerow(
                {k: "" if v is None else v for k, v in record.items()}
            )

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _number(text: str):
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    integral = math.isfinite(value) and re.fullmatch(r"[-+]?[0-9]+", text.strip())
    return int(value) if integral else value


def read_metrics(path, *, format: str | None = None, convert: bool = True) -> list[dict]:
    """Every record of a MetricsLogger file (a partial last line, from a run killed while
    writing, is skipped). CSV cells come back as numbers where they are numbers."""
    path = os.fspath(path)
    format = format or _FORMATS.get(os.path.splitext(path)[1].lower(), "jsonl")
    with open(path, newline="" if format == "csv" else None) as f:
        if format == "csv":
            rows = list(csv.DictReader(f))
            if convert:
                rows = [{k: _number(v) for k, v in r.items()} for r in rows]
            return rows
        out = []
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
