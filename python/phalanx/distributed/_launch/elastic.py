"""`phalanx launch --elastic`: a lost rank does not stop the job.

The ranks themselves survive a loss (phalanx.distributed.elastic: the others re-form the world
and continue). The launcher's part: it keeps the store (which must outlive every rank), does
not stop the job when a rank exits non-zero, starts a replacement for a lost rank (up to
--max-restarts times, after --restart-delay seconds, never more than --max-nproc running),
which joins the running ranks at their next commit, and reports each rank's exit reason (the
last line it wrote to stderr) at the end. With --hosts it also watches the hosts file
(discovery.py): every slot added during the run starts a rank that joins at the next commit.

Every process has a member id: the initial ranks keep their rank, each replacement takes the
next unused number; output prefixes and the summary use it. The job succeeds when some rank
completed (exited 0) without the launcher having to stop it.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time

from .discovery import HostsWatcher
from .plan import RankSpec
from .procs import close, kill, killpg
from .supervisor import Launcher


class _LastLine:
    """A log file stand-in that remembers the last non-empty line (the exit reason), and
    passes everything on to the real log, if any."""

    def __init__(self, log):
        self.log = log
        self.tail = b""
        self.last = ""

    def write(self, data: bytes) -> None:
        if self.log is not None:
            self.log.write(data)
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()[-4096:]
        for line in reversed(lines):
            if line.strip():
                self.last = line.decode(errors="replace").strip()
                break

    def flush(self) -> None:
        if self.log is not None:
            self.log.flush()

    def close(self) -> None:
        if self.tail.strip():
            self.last = self.tail.decode(errors="replace").strip()
        if self.log is not None:
            self.log.close()


class ElasticLauncher(Launcher):
    def __init__(self, args, specs, console):
        super().__init__(args, specs, console)
        self.next_member = len(specs)
        self.restarts_left = args.max_restarts
        self.pending: list[tuple[float, RankSpec]] = []  # (start time, spec) of replacements
        self.reasons: dict[int, _LastLine] = {}
        self.lost: list[int] = []
        self.joined: list[int] = []
        self.removed: set[int] = set()  # stale members killed at the end
        self.watcher = None
        self.groups: dict[str, int] = {}  # host -> GROUP_RANK, new hosts numbered on
        if args.hosts is not None:
            hosts = {id(s.host): s.host for s in specs if s.host is not None}
            self.watcher = HostsWatcher(args.hosts, list(hosts.values()))
            for s in specs:
                self.groups.setdefault(s.host.host, s.group_rank)
        self.capped = False  # said that --max-nproc holds a rank back

    def rank_env(self, spec: RankSpec) -> dict[str, str]:
        env = super().rank_env(spec)
        env.update(
            PHALANX_ELASTIC="1",
            PHALANX_ELASTIC_MIN_NPROC=str(self.args.min_nproc),
            PHALANX_ELASTIC_MEMBER=str(spec.rank),
        )
        if spec.rank >= len(self.specs):  # a replacement joins the running job
            # RANK / WORLD_SIZE are placeholders: its rank comes from the generation it joins.
            env.update(PHALANX_ELASTIC_JOIN="1", RANK="0", WORLD_SIZE="1")
        env.update(self.args.env)  # the user's word is last
        return env

    def open_log(self, spec: RankSpec, name: str):
        log = super().open_log(spec, name)
        if name != "stderr":
            return log
        self.reasons[spec.rank] = _LastLine(log)
        return self.reasons[spec.rank]

    def rank_failed(self, rank) -> None:
        running = sum(1 for r in self.ranks if r.code is None)
        self.lost.append(rank.spec.rank)
        text = f"{rank.describe()} {rank.outcome(self.args.kill_timeout)}"
        if running and self.restarts_left > 0:
            self.restarts_left -= 1
            spec = dataclasses.replace(rank.spec, rank=self.next_member)
            self.next_member += 1
            self.pending.append((time.monotonic() + self.args.restart_delay, spec))
            self.console.message(
                f"{text}; the job continues with {running} rank(s) (elastic); member "
                f"{spec.rank} replaces it in {self.args.restart_delay:g} s"
            )
        else:
            self.console.message(f"{text}; the job continues with {running} rank(s) (elastic)")

    def tick(self, now: float) -> None:
        running = sum(1 for r in self.ranks if r.code is None)
        if self.stop_started is not None or not running:
            self.pending = []  # the job is over or stopping: nothing left to join
            return
        if any(r.code == 0 for r in self.ranks):
            # The job completed on some rank: a member started now would wait for a commit
            # that never comes, and be left as the only one outside the generation. Checked
            # first: a replacement still waiting to be admitted when the last member finishes
            # (a slow start, as under emulation) is stale, not a sign of a failed job.
            self._remove_stale()
            for _, spec in self.pending:
                self.info(f"member {spec.rank} is not started: the job completed")
            self.pending = []
            return
        if self.joined and not self._members_running():
            self.begin_stop("no member of the job's current generation is left", 1)
            return
        if self.watcher is not None:
            self._discover(now)
        due = [p for p in self.pending if p[0] <= now]
        for item in due:
            if running >= self.args.max_nproc:
                if not self.capped:
                    self.capped = True
                    self.info(
                        f"member {item[1].rank} waits: --max-nproc {self.args.max_nproc} "
                        "ranks are running (raise --max-nproc to let added hosts in)"
                    )
                break
            self.capped = False
            self.pending.remove(item)
            spec = item[1]
            try:
                self.spawn(spec)
            except OSError as e:
                self.console.message(f"member {spec.rank}: could not start: {e}")
                continue
            running += 1
            self.joined.append(spec.rank)
            self.info(f"started member {spec.rank} to join the job at its next commit")

    def _discover(self, now: float) -> None:
        """Queues a joining rank for every slot added to the hosts file (discovery.py)."""
        added, messages = self.watcher.poll(now)
        for text in messages:
            self.info(text)
        for entry in added:
            group = self.groups.setdefault(entry.host, len(self.groups))
            on_host = sum(
                1 for r in self.ranks if r.code is None and r.spec.host_label == entry.host
            )
            members = []
            for i in range(entry.slots):
                spec = RankSpec(self.next_member, on_host + i, on_host + entry.slots, group, entry)
                self.next_member += 1
                self.pending.append((now, spec))
                members.append(spec.rank)
            self.info(
                f"hosts file: {entry.slots} slot(s) added on {entry.destination}; member(s) "
                f"{members} start and join the job at its next commit"
            )

    def _remove_stale(self) -> None:
        """Once the job completed on some rank, a process outside its newest generation (a
        frozen rank the others left behind, a replacement never admitted) has nothing left
        to do: killed (SIGKILL reaches a stopped process too), reported as removed."""
        members = self._newest_members()
        for r in self.ranks:
            if r.code is None and r.signalled is None and r.spec.rank not in members:
                r.signalled = "SIGKILL"
                self.removed.add(r.spec.rank)
                if r.remote:
                    close(r.proc.stdin)
                    kill(r.proc.pid, signal.SIGKILL)
                else:
                    killpg(r.proc.pid, signal.SIGKILL)
                self.info(
                    f"member {r.spec.rank} is not in the job's newest generation and the job "
                    "completed: killed"
                )

    def _newest_members(self) -> set[int]:
        from ..elastic import _generation

        gen = _generation.current_generation(self.store)
        if gen == 0:
            members = set(range(len(self.specs)))
        else:
            members = set(_generation.sealed(self.store, gen) or [])
        return members | set(_generation.sealed(self.store, gen + 1) or [])

    def _members_running(self) -> bool:
        """Whether a running process belongs to the job's newest generation; when only
        replacements waiting to be admitted are left, nobody will ever admit them."""
        members = self._newest_members()
        return any(r.code is None and r.spec.rank in members for r in self.ranks)

    def waiting(self) -> bool:
        return bool(self.pending)

    def finish(self, started: float) -> int:
        elapsed = time.monotonic() - started
        completed = [r for r in self.ranks if r.code == 0]
        failed = [r for r in self.ranks if r.code != 0]
        if self.stop_started is None and completed:
            note = ""
            if self.lost or self.joined:
                note = f"; lost members {self.lost}, started members {self.joined}"
            self.info(
                f"elastic job completed: {len(completed)} rank(s) exited 0 ({elapsed:.1f} s{note})"
            )
            for r in failed:
                self.info(f"  {self._line(r)}")
            return 0
        head = self.stop_reason or "no rank completed"
        lines = [f"elastic job failed after {elapsed:.1f} s: {head}; every rank's exit reason:"]
        lines += [f"  {self._line(r)}" for r in self.ranks]
        code = self.stop_code or 1
        lines.append(f"exit status {code}")
        for line in lines:
            self.console.message(line)
        return code

    def _line(self, r) -> str:
        reason = self.reasons.get(r.spec.rank)
        last = reason.last if reason is not None else ""
        if r.spec.rank in self.removed:
            return (
                f"member {r.spec.rank}: removed from the job (not in its newest generation), "
                "killed by the launcher when the job completed"
            )
        text = f"member {r.spec.rank}: {r.outcome(self.args.kill_timeout)}"
        # A process killed by a signal wrote no reason; its last line would mislead.
        return f"{text}: {last}" if last and r.code is not None and r.code > 0 else text


def check_args(args, nproc: int, usage_error) -> None:
    """The elastic options' rules (UsageError, exit status 2, before anything starts)."""
    if not args.elastic:
        for name in ("min_nproc", "max_nproc", "max_restarts", "restart_delay"):
            if getattr(args, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise usage_error(f"{flag} needs --elastic")
        return
    args.min_nproc = 1 if args.min_nproc is None else args.min_nproc
    if args.max_nproc is None:
        # With --hosts the hostfile is the bound: a host added to it is let in (as Horovod's
        # host discovery does); a local job has nothing to add.
        args.max_nproc = sys.maxsize if args.hosts is not None else nproc
    args.max_restarts = 0 if args.max_restarts is None else args.max_restarts
    args.restart_delay = 1.0 if args.restart_delay is None else args.restart_delay
    if not 1 <= args.min_nproc <= nproc:
        raise usage_error(
            f"--min-nproc must be from 1 to the number of ranks ({nproc}), got {args.min_nproc}"
        )
    if args.max_nproc < nproc:
        raise usage_error(
            f"--max-nproc ({args.max_nproc}) must be at least the number of ranks ({nproc})"
        )
    if args.max_restarts < 0:
        raise usage_error(f"--max-restarts must be >= 0, got {args.max_restarts}")
    if not args.restart_delay >= 0:
        raise usage_error(f"--restart-delay must be >= 0, got {args.restart_delay:g}")


__all__ = ["ElasticLauncher", "check_args"]
