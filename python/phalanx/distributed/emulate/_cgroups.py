"""CPU and memory caps of emulated phones: one cgroup v1 per phone and controller.

A phone's CPU is capped by the `cpu` controller's CFS bandwidth (`cpu.cfs_quota_us` out of
`cpu.cfs_period_us`), which can change while its processes run (a phone throttling as it
heats). The period is short, QUOTA_US / cores (0.1 of a core: 2 ms of every 20 ms; the
kernel's default 100 ms period would let a 10 ms burst of work run at full speed and then
stall for 90 ms): a slower phone is slower at every scale a training step has, not only
over 100 ms. Its memory is capped by the `memory`
controller's `memory.limit_in_bytes`: a process going over is killed by the kernel's OOM
killer (SIGKILL), as Android's low-memory killer ends an app, and the cgroup counts it.

Each phone's cgroup is a child of the cgroup the owner process runs in (its line in
/proc/self/cgroup), not of the hierarchy's root: whatever limits the owner is under keep
applying to the phones, and nothing outside the owner's own subtree is touched.
"""

from __future__ import annotations

import errno
import os
import signal
import time

from ._names import is_stale

ROOT = "/sys/fs/cgroup"
QUOTA_US = 2_000  # run time per period; the period follows from the cap
MIN_PERIOD_US, MAX_PERIOD_US = 1_000, 1_000_000  # the kernel's limits
CONTROLLERS = ("cpu", "memory", "cpuacct")


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in `controller`'s v1 hierarchy, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    return path
    except OSError:
        pass
    return None


def parent_dir(controller: str) -> str:
    """The directory the phones' cgroups of `controller` are made in."""
    own = _own_cgroup(controller) or "/"
    return os.path.join(ROOT, controller) + own.rstrip("/")


def missing(controller: str) -> str | None:
    """Why cgroups of `controller` cannot be made here, or None when they can."""
    mount = os.path.join(ROOT, controller)
    if not os.path.exists(os.path.join(mount, "cgroup.procs")):
        return (
            f"the cgroup v1 `{controller}` controller is not mounted at {mount} (cgroup v2 "
            "only, or no cgroups, e.g. in a container or on Android)"
        )
    parent = parent_dir(controller)
    if os.geteuid() != 0 or not os.access(parent, os.W_OK):
        return f"cgroup {parent} is not writable by uid {os.geteuid()} (root needed)"
    return None


def _write(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class Cgroup:
    """One cgroup directory of one controller."""

    def __init__(self, controller: str, name: str) -> None:
        self.controller = controller
        self.path = os.path.join(parent_dir(controller), name)

    def create(self) -> None:
        os.mkdir(self.path)

    def set(self, key: str, value) -> None:
        try:
            _write(os.path.join(self.path, key), value)
        except OSError as e:
            raise OSError(
                e.errno, f"cannot set {key}={value} in {self.path}: {e.strerror}"
            ) from None

    def get(self, key: str) -> str:
        return _read(os.path.join(self.path, key))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self.get("cgroup.procs").split()]
        except OSError:
            return []

    def enter_command(self) -> str:
        """Shell words that move the shell running them (and so what it execs) in here."""
        return f'echo $$ > "{os.path.join(self.path, "cgroup.procs")}"'

    def remove(self, timeout: float = 10.0) -> None:
        """Kills every process inside (SIGCONT first, for a frozen one), then deletes the
        directory; a process still exiting keeps it busy for a moment, so retry."""
        deadline = time.monotonic() + timeout
        while os.path.isdir(self.path):
            for pid in self.pids():
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise OSError(
                        e.errno, f"cannot remove cgroup {self.path}: {e.strerror}"
                    ) from None
                time.sleep(0.02)


def remove_stale() -> list[str]:
    """Removes the phone cgroups (and their processes) of owners that are gone."""
    removed = []
    for controller in CONTROLLERS:
        if missing(controller):
            continue
        parent = parent_dir(controller)
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            if is_stale(name) and os.path.isdir(os.path.join(parent, name)):
                try:
                    Cgroup(controller, name).remove()
                    removed.append(os.path.join(parent, name))
                except OSError:
                    pass  # reported by the next attempt; never fails a new cluster
    return removed


class PhoneCgroups:
    """The cgroups of one phone: `cpu` always (so a cap can be set later), `memory` when
    capped, `cpuacct` where mounted (the CPU time the phone really got: on a busy machine
    less than its cap). Created by create(), removed (with every process inside) by
    remove()."""

    def __init__(self, name: str, cpu: float | None, mem: int | None) -> None:
        self.name = name
        self.cpu = Cgroup("cpu", name)
        self.memory = Cgroup("memory", name) if mem is not None else None
        self.acct = Cgroup("cpuacct", name) if missing("cpuacct") is None else None
        self._cpu_cap = cpu
        self._mem_cap = mem
        self.created: list[Cgroup] = []

    @property
    def groups(self) -> list[Cgroup]:
        return [g for g in (self.cpu, self.memory, self.acct) if g is not None]

    def cpu_seconds(self) -> float | None:
        """CPU time the phone's processes used (None without cpuacct)."""
        return None if self.acct is None else int(self.acct.get("cpuacct.usage")) / 1e9

    def create(self) -> None:
        for g in self.groups:
            g.create()
            self.created.append(g)
        self.set_cpu(self._cpu_cap)
        if self.memory is not None:
            self.memory.set("memory.limit_in_bytes", self._mem_cap)
            # Without swap a cap on memory alone is the cap; with swap, cap swap too, so the
            # phone cannot hide its excess there (the file exists only with swap accounting).
            memsw = os.path.join(self.memory.path, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):
                self.memory.set("memory.memsw.limit_in_bytes", self._mem_cap)

    def set_cpu(self, cores: float | None) -> None:
        if cores is None:
            self.cpu.set("cpu.cfs_quota_us", -1)
        else:
            period = min(MAX_PERIOD_US, max(MIN_PERIOD_US, round(QUOTA_US / cores)))
            quota = round(cores * period)
            # The kernel checks quota against the period in force (and the parent's), so
            # lift the quota before changing the period.
            self.cpu.set("cpu.cfs_quota_us", -1)
            self.cpu.set("cpu.cfs_period_us", period)
            self.cpu.set("cpu.cfs_quota_us", quota)
        self._cpu_cap = cores

    @property
    def cpu_cap(self) -> float | None:
        return self._cpu_cap

    @property
    def mem_cap(self) -> int | None:
        return self._mem_cap

    def throttling(self) -> dict:
        """cpu.stat: periods, periods the cap held the phone back, seconds held back."""
        stat = dict(line.split() for line in self.cpu.get("cpu.stat").splitlines() if line)
        return {
            "periods": int(stat.get("nr_periods", 0)),
            "throttled_periods": int(stat.get("nr_throttled", 0)),
            "throttled_seconds": int(stat.get("throttled_time", 0)) / 1e9,
        }

    def oom_kills(self) -> int:
        """Processes the OOM killer ended for going over the memory cap."""
        if self.memory is None:
            return 0
        for line in self.memory.get("memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return int(self.memory.get("memory.failcnt") != "0\n")  # kernels without the count

    def memory_peak(self) -> int | None:
        if self.memory is None:
            return None
        return int(self.memory.get("memory.max_usage_in_bytes"))

    def pids(self) -> list[int]:
        return sorted({p for g in self.created for p in g.pids()})

    def enter_command(self) -> str:
        return " && ".join(g.enter_command() for g in self.groups)

    def remove(self) -> None:
        errors = []
        for g in reversed(self.created):
            try:
                g.remove()
            except OSError as e:
                errors.append(str(e))
        self.created.clear()
        if errors:
            raise OSError("; ".join(errors))
