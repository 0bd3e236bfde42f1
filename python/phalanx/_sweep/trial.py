"""One trial: `phalanx launch` run as a child process with the trial's parameters appended to
the script's arguments, its output written to DIR/trials/N/output.log, its reports read from
rank 0's output as they come (DIR/trials/N/metrics.jsonl keeps them), and a way to stop it
early (Optuna's pruning, Ctrl-C): SIGTERM to the launcher, which stops every rank.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..utils.metrics import MetricsLogger
from .report import TRIAL_ENV, parse_report

# The launcher's --kill-timeout is 10 s: it needs that long at most to stop the ranks after
# our SIGTERM, then this much more before we SIGKILL what is left.
STOP_GRACE = 20.0
_PREFIX = re.compile(r"^\[rank \d+[^\]]*\] ")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b(:.*)?$")


def _interpreter() -> list[str]:
    """This interpreter and its flags (-S ...), so the launcher imports the same phalanx."""
    try:
        return [sys.executable, *subprocess._args_from_interpreter_flags()]
    except AttributeError:
        return [sys.executable] + (["-S"] if sys.flags.no_site else [])


@dataclass
class Outcome:
    status: str  # ok | failed | pruned | stopped
    error: str
    seconds: float
    last: dict = field(default_factory=dict)
    best: dict = field(default_factory=dict)


class Trial:
    """Runs one trial to its end (run()); stop() may be called from another thread."""

    def __init__(
        self,
        number: int,
        directory: str,
        launcher_args: list[str],
        script: list[str],
        mode: str,
        on_report: Callable[[int | None, dict], bool] | None = None,
    ):
        self.number = number
        self.directory = directory
        self.command = [
            *_interpreter(),
            "-m",
            "phalanx.distributed.launch",
            "--env",
            f"{TRIAL_ENV}={number}",
            *launcher_args,
            *script,
        ]
        self.mode = mode
        self.on_report = on_report  # returns True to stop the trial (pruned)
        self.last: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self._stop_reason: str | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stderr_tail: list[str] = []

    def _better(self, new: float, old: float) -> bool:
        return new > old if self.mode == "max" else new < old

    def _record(self, step, metrics: dict) -> None:
        for name, value in metrics.items():
            if not isinstance(value, (int, float)):
                continue
            self.last[name] = value
            if not math.isnan(value) and (
                name not in self.best or self._better(value, self.best[name])
            ):
                self.best[name] = value
        self._metrics.log_dict(metrics, step=step)
        if (
            self.on_report is not None
            and self._stop_reason is None
            and self.on_report(step, metrics)
        ):
            self.stop("pruned")

    def _pump(self, stream, log, is_stderr: bool) -> None:
        trial = str(self.number)
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            with self._lock:
                log.write(line)
                log.flush()
            if is_stderr:
                self._stderr_tail = (self._stderr_tail + [line.rstrip("\r\n")])[-50:]
                continue
            for piece in line.split("\r"):
                parsed = parse_report(piece, trial)
                if parsed is not None:
                    with self._lock:
                        self._record(*parsed)

    def run(self) -> Outcome:
        os.makedirs(self.directory, exist_ok=True)
        self._metrics = MetricsLogger(os.path.join(self.directory, "metrics.jsonl"), append=False)
        t0 = time.monotonic()
        with open(os.path.join(self.directory, "output.log"), "w") as log:
            log.write("$ " + " ".join(self.command) + "\n")
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches the sweep, which stops the trial
            )
            if self._stop_reason is not None:  # stop() came before the start
                self._signal(signal.SIGTERM)
            pumps = [
                threading.Thread(target=self._pump, args=(s, log, s is self._proc.stderr))
                for s in (self._proc.stdout, self._proc.stderr)
            ]
            for p in pumps:
                p.start()
            code = self._proc.wait()
            for p in pumps:
                p.join()
        seconds = time.monotonic() - t0
        if self._stop_reason is not None:
            status, error = self._stop_reason, ""
        elif code != 0:
            status, error = "failed", self._error_line(code)
        else:
            status, error = "ok", ""
        return Outcome(status, error, seconds, dict(self.last), dict(self.best))

    def _error_line(self, code: int) -> str:
        lines = [_PREFIX.sub("", x).strip() for x in self._stderr_tail]
        for line in reversed(lines):
            if _EXCEPTION.match(line):
                return line
        ours = [x for x in self._stderr_tail if x.strip() and not _PREFIX.match(x)]
        if ours:
            return ours[-1].strip()
        return f"the launcher exited with code {code}"

    def _signal(self, sig) -> None:
        try:
            os.kill(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, reason: str = "stopped") -> None:
        """Stops the trial: SIGTERM to the launcher (it stops every rank), SIGKILL to its
        process group after STOP_GRACE seconds if it is still there."""
        if self._stop_reason is not None:
            return
        self._stop_reason = reason
        proc = self._proc
        if proc is None:
            return
        self._signal(signal.SIGTERM)

        def escalate():
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        threading.Thread(target=escalate, daemon=True).start()
