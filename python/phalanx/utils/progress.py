"""Progress of a loop: a live tqdm bar on a terminal, a plain line every N seconds elsewhere.

A log file (the launcher's --log-dir, CI, `make demo > log`) is not a terminal: a tqdm bar there
turns into thousands of carriage-return updates on a few very long lines. So ``progress(...)``
draws a tqdm bar only when the output is a terminal (and tqdm is installed), and otherwise
prints one whole line every `interval` seconds and one when the loop ends::

    for images, labels in (bar := progress(loader, desc=f"epoch {epoch}", unit="batch")):
        ...
        bar.set_postfix(loss=f"{loss:.4f}")

    epoch 1: 212/938 batch (23%), 30.0 s, 7.1 batch/s, loss=0.6120
    epoch 1: 938/938 batch in 131.2 s (7.1 batch/s), loss=0.4310

PHALANX_PROGRESS=bar|lines decides instead of the terminal check. The launcher sets it for its
ranks, whose stdout is always a pipe to the launcher: ``bar`` when the launcher's own stdout is
a terminal and it writes no --log-dir (it forwards rank 0's live updates), ``lines`` otherwise.
PHALANX_PROGRESS_INTERVAL sets the default interval in seconds (30).
"""

from __future__ import annotations

import math
import os
import sys
import time

__all__ = ["LineProgress", "progress", "progress_mode"]

DEFAULT_INTERVAL = 30.0
MODES = ("bar", "lines")
_clock = time.monotonic  # the tests replace it


def progress_mode(file=None) -> str:
    """ "bar" or "lines": PHALANX_PROGRESS if set, else "bar" when `file` (default
    sys.stdout) is a terminal."""
    value = os.environ.get("PHALANX_PROGRESS", "")
    if value:
        if value not in MODES:
            raise ValueError(f"PHALANX_PROGRESS must be one of {', '.join(MODES)}; got {value!r}")
        return value
    try:
        return "bar" if (file or sys.stdout).isatty() else "lines"
    except (AttributeError, ValueError, OSError):  # closed, or not a real stream
        return "lines"


def _default_interval() -> float:
    value = os.environ.get("PHALANX_PROGRESS_INTERVAL", "")
    if not value:
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"PHALANX_PROGRESS_INTERVAL must be seconds >= 0, got {value!r}")
    return seconds


def progress(iterable, desc: str = "", total: int | None = None, unit: str = "it", *,
             interval: float | None = None, file=None, leave: bool = True):  # fmt: skip
    """Wraps `iterable`: a tqdm bar on a terminal, a LineProgress elsewhere (see the module
    docstring). Both have set_postfix(**values), set_description(desc), write(text) and
    close()."""
    if progress_mode(file) == "bar":
        try:
            from tqdm import tqdm
        except ImportError:  # optional: lines instead
            pass
        else:
            return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, file=file)
    return LineProgress(iterable, desc, total, unit, interval=interval, file=file)


class LineProgress:
    """Iterates `iterable`, printing "desc: n/total unit (p%), elapsed, rate, postfix" at most
    every `interval` seconds and a closing line at the end: whole lines, no carriage returns."""

    def __init__(self, iterable, desc: str = "", total: int | None = None, unit: str = "it", *,
                 interval: float | None = None, file=None):  # fmt: skip
        if interval is None:
            interval = _default_interval()
        elif not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval >= 0):
            raise ValueError(f"progress: interval must be seconds >= 0, got {interval!r}")
        if total is None:
            try:
                total = len(iterable)
            except TypeError:
                total = None
        self.iterable = iterable
        self.desc = desc
        self.total = total
        self.unit = unit
        self.interval = float(interval)
        self.file = file
        self.n = 0
        self.postfix = ""
        self.started = None
        self.closed = False

    def __len__(self) -> int:
        return self.total if self.total is not None else len(self.iterable)

    def __iter__(self):
        self.started = last = _clock()
        try:
            for item in self.iterable:
                yield item
                self.n += 1
                now = _clock()
                if now - last >= self.interval:
                    last = now
                    self._line(now, final=False)
        finally:
            self.close()

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **values) -> None:
        items = dict(ordered_dict or {}, **values)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def write(self, text: str) -> None:
        print(text, file=self.file or sys.stdout, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.started is not None:
            self._line(_clock(), final=True)

    def _line(self, now: float, final: bool) -> None:
        elapsed = max(now - self.started, 0.0)
        rate = f"{self.n / elapsed:.1f} {self.unit}/s" if elapsed > 0 else f"- {self.unit}/s"
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        head = f"{self.desc}: " if self.desc else ""
        if final:
            text = f"{head}{count} {self.unit} in {elapsed:.1f} s ({rate})"
        else:
            share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            text = f"{head}{count} {self.unit}{share}, {elapsed:.1f} s, {rate}"
        if self.postfix:
            text += f", {self.postfix}"
        self.write(text)
