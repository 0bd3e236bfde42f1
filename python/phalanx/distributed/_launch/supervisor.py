"""The supervision of a running `phalanx launch` job: the Launcher starts the rendezvous store
and every rank, watches them, stops them all on the first failure, a signal or --max-time,
and prints the summary; Rank records one started rank and words how it ended.

One thread (the main one) makes every decision in a polling loop; signal handlers only note
the signal, and output threads only copy bytes, so there is no locking around job state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .output import Console, pump
from .plan import RankSpec, rank_env
from .procs import close, close_fd, has_exited, kill, killpg, local_command, signal_name
from .remote import remote_command, ssh_command

# Extra seconds a remote rank gets beyond --kill-timeout before its ssh client is killed: the
# host's watchdog SIGKILLs the rank at --kill-timeout and needs a moment to report back.
REMOTE_KILL_MARGIN = 2.0
POLL_INTERVAL = 0.05
PUMP_JOIN_TIMEOUT = 2.0  # seconds to wait for a finished rank's last output


@dataclass
class Rank:
    spec: RankSpec
    proc: subprocess.Popen
    started: float
    threads: list = field(default_factory=list)
    code: int | None = None  # Popen returncode once exited
    ended: float | None = None
    signalled: str | None = None  # what the launcher did to stop it ("SIGTERM", ...)
    failed_first: bool = False
    guard: int | None = None  # write end of a local rank's guard pipe (see boot.py)

    @property
    def remote(self) -> bool:
        return self.spec.host is not None

    def describe(self) -> str:
        pid = "ssh pid" if self.remote else "pid"
        return f"rank {self.spec.rank} (host {self.spec.host_label}, {pid} {self.proc.pid})"

    def outcome(self, kill_timeout: float) -> str:
        code = self.code
        if code is None:
            return "still running"
        if self.signalled:
            if code == -signal.SIGKILL and self.signalled == "SIGKILL":
                what = "its ssh client" if self.remote else "it"
                return (
                    f"did not stop within the {kill_timeout:g} s kill timeout; "
                    f"the launcher killed {what} (SIGKILL)"
                )
            if code in (-signal.SIGTERM, 128 + signal.SIGTERM):
                return "stopped by the launcher (SIGTERM)"
            if self.remote and code == 128 + signal.SIGKILL:
                return f"killed (SIGKILL) on its host after the {kill_timeout:g} s kill timeout"
        if code < 0:
            return f"killed by {signal_name(-code)}"
        text = f"exited with code {code}"
        if self.remote and code == 255:
            text += " (ssh could not connect or authenticate, or the connection dropped)"
        elif self.remote and code > 128 and code - 128 < signal.NSIG:
            text += f" (128+{signal_name(code - 128)}: killed by a signal on its host)"
        if self.signalled:
            text += " after the launcher asked it to stop"
        return text


class Launcher:
    def __init__(self, args, specs: list[RankSpec], console: Console):
        self.args = args
        self.specs = specs
        self.console = console
        self.ranks: list[Rank] = []
        self.store = None
        self.master: tuple[str, int] | None = None
        self.stop_reason: str | None = None  # why the launcher stopped the job
        self.stop_code = 0
        self.stop_started: float | None = None
        self.killed = False
        self.interrupts = 0
        self.pending_signal: int | None = None

    def info(self, text: str) -> None:
        if not self.args.quiet:
            self.console.message(text)

    # ---- signals

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT:
            self.interrupts += 1
        self.pending_signal = signum  # handled by the main loop, not inside the handler

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            old[s] = signal.signal(s, self._on_signal)
        return old

    # ---- start

    def start_store(self) -> None:
        from .._store import TCPStore  # the C++ store server runs on its own thread

        self.store = TCPStore(
            "127.0.0.1",
            self.args.master_port,
            len(self.specs),
            is_master=True,
            timeout=30.0,
            job_id=self.args.job_id,
            token=self.args.token,
        )
        self.master = (self.args.master_addr, self.store.port)

    # ---- where rank output goes (phalanx.distributed.run overrides both)

    def output_console(self, spec: RankSpec) -> Console | None:
        """The console a rank's output is shown on; None: not shown."""
        return None if (self.args.quiet and self.args.log_dir) else self.console

    def open_log(self, spec: RankSpec, name: str):
        """A binary file (write, flush, close) that gets the rank's raw `name` stream
        ("stdout" or "stderr"), or None."""
        if not self.args.log_dir:
            return None
        return open(os.path.join(self.args.log_dir, f"rank{spec.rank}.{name}.log"), "wb")

    def rank_env(self, spec: RankSpec) -> dict[str, str]:
        """The variables a rank is started with (the elastic launcher adds its own)."""
        return rank_env(self.args, spec, len(self.specs), self.master)

    def spawn(self, spec: RankSpec) -> None:
        args = self.args
        env = self.rank_env(spec)
        guard_read = guard_write = None
        if spec.host is None:
            # The rank's guard (boot.py) reads the end of this pipe: the launcher's death.
            guard_read, guard_write = os.pipe()
            cmd = local_command(args, guard_read)
            full_env = dict(os.environ, **env)
            stdin = subprocess.DEVNULL
            cwd = args.cwd
        else:
            cmd = ssh_command(args, spec.host, remote_command(args, env))
            full_env = dict(os.environ)
            stdin = subprocess.PIPE  # closing it asks the host's watchdog to stop the rank
            cwd = None
        try:
            proc = subprocess.Popen(
                cmd,
                env=full_env,
                cwd=cwd,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=() if guard_read is None else (guard_read,),
                start_new_session=True,  # own process group; Ctrl-C reaches only the launcher
            )
        except BaseException:
            close_fd(guard_write)
            raise
        finally:
            close_fd(guard_read)
        rank = Rank(spec, proc, time.monotonic(), guard=guard_write)
        self.ranks.append(rank)
        label = f"rank {spec.rank}" + (f" {spec.host.host}" if spec.host else "")
        prefix = b"" if args.no_prefix else f"[{label}] ".encode()
        console = self.output_console(spec)
        live_progress = spec.rank == 0 and self.console.live_progress()
        for name, src, dest in (
            ("stdout", proc.stdout, self.console.out),
            ("stderr", proc.stderr, self.console.err),
        ):
            log = self.open_log(spec, name)
            t = threading.Thread(
                target=pump,
                args=(src, console, (spec.rank, name), dest, prefix, log, live_progress),
                name=f"phalanx-launch-rank{spec.rank}-{name}",
                daemon=True,
            )
            t.start()
            rank.threads.append(t)

    # ---- stop

    def begin_stop(self, reason: str, code: int) -> None:
        if self.stop_started is not None:
            return
        self.stop_reason, self.stop_code = reason, code
        self.stop_started = time.monotonic()
        running = [r for r in self.ranks if r.code is None]
        if running:
            self.info(
                f"stopping {len(running)} rank(s): SIGTERM, then SIGKILL after "
                f"{self.args.kill_timeout:g} s"
            )
        for r in running:
            r.signalled = "SIGTERM"
            if r.remote:
                close(r.proc.stdin)  # the host's watchdog SIGTERMs the rank
            else:
                killpg(r.proc.pid, signal.SIGTERM)

    def kill_all(self) -> None:
        self.killed = True
        for r in self.ranks:
            if r.code is None:
                r.signalled = "SIGKILL"
                if r.remote:
                    kill(r.proc.pid, signal.SIGKILL)
                else:
                    killpg(r.proc.pid, signal.SIGKILL)

    def max_time_message(self) -> str:
        return f"the job ran longer than --max-time {self.args.max_time:g} s"

    def _kill_deadline(self, rank: Rank) -> float:
        margin = REMOTE_KILL_MARGIN if rank.remote else 0.0
        return self.stop_started + self.args.kill_timeout + margin

    # ---- run

    def reap(self, rank: Rank) -> None:
        """Collects a rank that has exited; a first failure starts stopping the others."""
        if rank.remote:
            close(rank.proc.stdin)
        else:
            # Whatever the rank left behind in its group goes too. The unreaped leader still
            # holds the group id, so this cannot reach an unrelated process.
            killpg(rank.proc.pid, signal.SIGKILL)
        rank.code = rank.proc.wait()
        rank.ended = time.monotonic()
        rank.guard = close_fd(rank.guard)
        for t in rank.threads:
            t.join(PUMP_JOIN_TIMEOUT)
        if rank.code != 0 and self.stop_started is None:
            self.rank_failed(rank)

    def rank_failed(self, rank: Rank) -> None:
        """A rank exited non-zero while the job ran: the first failure stops the job (the
        elastic launcher continues instead)."""
        rank.failed_first = True
        text = f"{rank.describe()} {rank.outcome(self.args.kill_timeout)}"
        self.console.message(text)
        code = rank.code if rank.code > 0 else 128 - rank.code
        self.begin_stop(text, code)

    def handle_signal(self) -> None:
        signum, self.pending_signal = self.pending_signal, None
        if self.stop_started is None:
            name = signal_name(signum)
            self.console.message(f"got {name}: stopping every rank")
            self.begin_stop(f"the launcher got {name}", 128 + signum)
        if self.interrupts >= 2 and not self.killed:
            self.console.message("second SIGINT: killing every rank now")
            self.kill_all()

    def run(self) -> int:
        old = self._install_signals()
        try:
            try:
                self.start_store()
            except Exception as e:  # port in use, no free port...
                self.console.message(f"cannot start the rendezvous store: {e}")
                return 1
            self.info(
                f"{len(self.specs)} rank(s), store at {self.master[0]}:{self.master[1]}, "
                f"job {self.args.job_id}"
            )
            started = time.monotonic()
            for spec in self.specs:
                if self.pending_signal is not None:
                    break
                try:
                    self.spawn(spec)
                except OSError as e:
                    self.console.message(f"rank {spec.rank}: could not start: {e}")
                    self.begin_stop(f"rank {spec.rank} could not start: {e}", 127)
                    break
            self.loop(started)
            return self.finish(started)
        finally:
            self.cleanup()
            for s, handler in old.items():
                signal.signal(s, handler)

    def loop(self, started: float) -> None:
        while True:
            if self.pending_signal is not None:
                self.handle_signal()
            for r in self.ranks:
                if r.code is None and has_exited(r.proc):
                    self.reap(r)
            now = time.monotonic()
            self.tick(now)
            running = [r for r in self.ranks if r.code is None]
            if not running and not self.waiting():
                return
            if self.stop_started is None and self.args.max_time is not None:
                if now - started > self.args.max_time:
                    text = self.max_time_message()
                    self.console.message(text)
                    self.begin_stop(text, 124)
            if self.stop_started is not None:
                for r in running:
                    if r.signalled != "SIGKILL" and now >= self._kill_deadline(r):
                        r.signalled = "SIGKILL"
                        (kill if r.remote else killpg)(r.proc.pid, signal.SIGKILL)
            time.sleep(POLL_INTERVAL)

    def tick(self, now: float) -> None:
        """Called every poll, after exited ranks are reaped (the elastic launcher starts
        replacements here)."""

    def waiting(self) -> bool:
        """Whether a rank is still to be started (then the job is not over)."""
        return False

    def finish(self, started: float) -> int:
        elapsed = time.monotonic() - started
        if self.stop_started is None:
            self.info(f"all {len(self.ranks)} rank(s) exited 0 ({elapsed:.1f} s)")
            return 0
        ordered = sorted(
            (r for r in self.ranks if r.code != 0),
            key=lambda r: (not r.failed_first, r.signalled is not None, r.ended or 0),
        )
        if any(r.failed_first for r in self.ranks):
            lines = [f"job failed after {elapsed:.1f} s; first failure first:"]
        else:
            lines = [f"job stopped after {elapsed:.1f} s: {self.stop_reason}"]
        for r in ordered:
            mark = "  <- first failure" if r.failed_first else ""
            lines.append(f"  {r.describe()}: {r.outcome(self.args.kill_timeout)}{mark}")
        ok = sum(1 for r in self.ranks if r.code == 0)
        if ok:
            lines.append(f"  {ok} other rank(s) exited 0")
        lines.append(f"exit status {self.stop_code}")
        for line in lines:
            self.console.message(line)
        return self.stop_code

    def cleanup(self) -> None:
        """Whatever happened (even an exception in the launcher), no rank outlives it."""
        for r in self.ranks:
            if r.code is None:  # not reaped yet: its group id is still its own
                (kill if r.remote else killpg)(r.proc.pid, signal.SIGKILL)
                try:
                    r.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            if r.remote:
                close(r.proc.stdin)
            r.guard = close_fd(r.guard)
        for r in self.ranks:
            for t in r.threads:
                t.join(PUMP_JOIN_TIMEOUT)
        self.store = None  # stops the store server
