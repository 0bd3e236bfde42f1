"""The launcher's supervisor as phalanx.distributed.run needs it.

The job is started, watched and stopped exactly as `phalanx launch` does it (the same
Launcher: rank plan, boot guard, ssh watchdog, SIGTERM then SIGKILL, signals). What differs:

- output goes to this interpreter's *current* sys.stdout / sys.stderr as text, so in Jupyter
  it lands in the running cell (ipykernel's streams are text streams with no file behind
  them); only the ranks asked for are shown;
- the last lines of every rank's stderr are kept, to explain a rank that died without
  reporting an error (a crash, the OOM killer, ssh failing to connect);
- the payload is put in the store before any rank starts, and the results and error records
  are read in finish(), while the store still runs (cleanup() stops it);
- no summary is printed: run() raises an exception that says it.
"""

from __future__ import annotations

import collections
import sys

from .._launch.output import Console
from .._launch.supervisor import Launcher
from . import transport

PROG = "phalanx.distributed.run"
TAIL_LINES = 20  # lines of a rank's stderr kept for the error message


class TextStream:
    """A binary file interface over sys.<name> looked up at each write (a notebook kernel,
    pytest's capture and redirect_stdout all swap it)."""

    def __init__(self, name: str):
        self.name = name

    def _stream(self):
        return getattr(sys, self.name)

    def write(self, data: bytes) -> None:
        self._stream().write(data.decode("utf-8", "replace"))

    def flush(self) -> None:
        self._stream().flush()

    def fileno(self) -> int:  # Console asks whether this is a terminal
        return self._stream().fileno()


class DriverConsole(Console):
    """The Console on sys.stdout/sys.stderr whose launcher messages are also kept."""

    def __init__(self):
        super().__init__(TextStream("stdout"), TextStream("stderr"))
        self.messages: list[str] = []

    def live_progress(self) -> bool:
        # A Jupyter cell redraws a carriage-return update in place, as a terminal does.
        return super().live_progress() or "ipykernel" in type(sys.stdout).__module__

    def message(self, text: str) -> None:
        self.messages.append(text)
        with self.lock:
            self._close_open_line()
            self._write(self.err, f"{PROG}: {text}\n".encode(errors="replace"))


class Tail:
    """The last TAIL_LINES lines of a stream (write/flush/close, as a log file), optionally
    teed to a real log file."""

    def __init__(self, log=None):
        self.lines = collections.deque(maxlen=TAIL_LINES)
        self.partial = b""
        self.log = log

    def write(self, data: bytes) -> None:
        if self.log is not None:
            self.log.write(data)
        *done, self.partial = (self.partial + data).split(b"\n")
        self.lines.extend(done)
        self.partial = self.partial[-65536:]

    def flush(self) -> None:
        if self.log is not None:
            self.log.flush()

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def text(self) -> str:
        lines = list(self.lines) + ([self.partial] if self.partial else [])
        return b"\n".join(lines).decode("utf-8", "replace")


class DriverLauncher(Launcher):
    def __init__(self, args, specs, console: DriverConsole, payload: bytes, output: str):
        super().__init__(args, specs, console)
        self.payload = payload
        self.output = output  # "rank0", "all" or "none"
        self.tails: dict[int, Tail] = {}
        self.results: dict[int, bytes] = {}
        self.errors: dict[int, bytes] = {}
        self.got_signal: int | None = None  # the first signal that stopped the job
        self.timed_out = False

    def key(self, name: str) -> str:
        return self.store.key_prefix("run", name)

    def start_store(self) -> None:
        super().start_store()
        transport.put(self.store, self.key(transport.PAYLOAD), self.payload)

    def handle_signal(self) -> None:
        if self.got_signal is None:
            self.got_signal = self.pending_signal
        super().handle_signal()

    def max_time_message(self) -> str:
        self.timed_out = True
        return f"the job ran longer than timeout={self.args.max_time:g} s"

    def output_console(self, spec):
        if self.output == "all" or (self.output == "rank0" and spec.rank == 0):
            return self.console
        return None

    def open_log(self, spec, name):
        log = super().open_log(spec, name)
        if name != "stderr":
            return log
        self.tails[spec.rank] = Tail(log)
        return self.tails[spec.rank]

    def finish(self, started: float) -> int:
        for r in self.ranks:
            rank = r.spec.rank
            for store_key, into in (
                (transport.result_key(rank), self.results),
                (transport.error_key(rank), self.errors),
            ):
                if transport.has(self.store, self.key(store_key)):
                    into[rank] = transport.get(self.store, self.key(store_key))
        return 0 if self.stop_started is None else self.stop_code
