"""The watchdog that runs on each remote host between sshd and the rank.

Not imported by the launcher: remote.py sends this file's source to the host (`python3 -c
SOURCE GRACE python3 -u script args...`), so the host needs no phalanx. ssh cannot deliver a
signal to a remote process; the launcher's one lever is the session itself. The rank runs in
a process group of its own; when the ssh session's stdin closes (the launcher asks the rank
to stop, is killed, or the connection dropped) or this watchdog gets SIGTERM, SIGHUP or
SIGINT, the group gets SIGTERM, then SIGKILL after GRACE seconds. Exit status: the rank's, or
128+N when signal N ended it.

It also gives the rank OMP_NUM_THREADS when neither the user (--env) nor the host set it and
OpenMP's default (one thread per core) would oversubscribe: the cores this host lets the rank
use divided among the host's ranks, as the launcher does for local ranks, whenever the host
runs several ranks or a CPU quota (a phone's or a container's cgroup) gives the rank fewer
cores than the host has. Only the host knows its cores and its quota: one thread per core
spin-waits inside a quota of a fraction of a core and ran an emulated phone 17x slower.

It runs under the host's python3, which may be older than the launcher's: nothing here
needs more than Python 3.6 (no annotations that are evaluated, no newer library calls).
"""

import os
import signal
import subprocess
import sys
import threading
import time


def _watch_stdin(stop: threading.Event) -> None:
    while os.read(0, 4096):
        pass
    stop.set()


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:  # the group is gone already
        pass


def _read(path):
    try:
        with open(path) as f:
            return f.read().split()
    except (OSError, UnicodeError):
        return None


def _quota_cores(root="/"):
    """The tightest CPU quota, in cores, on this process's cgroup and its ancestors (v1
    cpu.cfs_quota_us / cpu.cfs_period_us, v2 cpu.max), or None when there is none."""
    lines = _read(os.path.join(root, "proc/self/cgroup")) or []
    best = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1].split(","), parts[2].strip("/")
        if parts[1] == "":  # v2
            mounts, files = ["sys/fs/cgroup"], ("cpu.max",)
        elif "cpu" in controllers:
            mounts = ["sys/fs/cgroup/" + parts[1], "sys/fs/cgroup/cpu"]
            files = ("cpu.cfs_quota_us", "cpu.cfs_period_us")
        else:
            continue
        for mount in mounts:
            base = os.path.join(root, mount)
            if not os.path.isdir(base):
                continue
            steps = path.split("/") if path else []
            for depth in range(len(steps) + 1):  # the cgroup and each ancestor
                where = os.path.join(base, *steps[:depth])
                values = [_read(os.path.join(where, f)) for f in files]
                words = sum((v or [] for v in values), [])
                if len(words) != 2 or words[0] in ("max", "-1"):
                    continue
                try:
                    cores = int(words[0]) / int(words[1])
                except (ValueError, ZeroDivisionError):
                    continue
                if cores > 0 and (best is None or cores < best):
                    best = cores
            break
    return best


def default_threads(environ, root="/"):
    """OpenMP threads for one rank: usable cores (affinity, then quota) over the ranks this
    host runs (LOCAL_WORLD_SIZE), at least 1; None when OpenMP's default fits already (one
    rank, no quota below the host's cores), as the launcher leaves a lone local rank."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    quota = _quota_cores(root)
    usable = cores if quota is None else min(cores, int(quota))
    try:
        ranks = max(1, int(environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        ranks = 1
    if ranks == 1 and usable >= cores:
        return None
    return max(1, usable // ranks)


def main(argv) -> int:
    grace = float(argv[0])
    threads = None if "OMP_NUM_THREADS" in os.environ else default_threads(os.environ)
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, lambda *a: stop.set())
    child = subprocess.Popen(argv[1:], stdin=subprocess.DEVNULL, start_new_session=True)
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    while child.poll() is None and not stop.wait(0.1):
        pass
    if child.poll() is None:
        _killpg(child.pid, signal.SIGTERM)
        end = time.monotonic() + grace
        while child.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
    _killpg(child.pid, signal.SIGKILL)  # the rank, or whatever it left behind in its group
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
