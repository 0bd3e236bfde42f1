"""Ranks on separate network namespaces joined by a bridge, links optionally rate-limited: the
closest thing to phones on a switch one Linux machine offers. Used by the tests and by
benchmarks/dist_bench.py.

    with NetNamespaces(3, rate_mbit=100) as net:
        subprocess.run(net.exec_prefix(0) + ["python3", ...])   # runs as 10.213.0.1

Layout: one namespace holds the bridge (nothing touches the host's own networking), each rank
namespace has `lo` and `eth0` = one end of a veth pair whose other end is a bridge port. With a
rate, a tbf qdisc shapes both directions of each link (eth0 for what the rank sends, the bridge
port for what it receives), like a full-duplex switch port. netem is not available here, so
there is no added delay or loss, only the rate.

Needs root (`ip netns`); `skip_reason()` says why not when it cannot run (Termux on a phone).
Namespaces are named phx<pid>s<set>...; they are removed on exit, at interpreter exit if the
with-block was skipped, and at the next start if a killed run (its pid gone) left some behind.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import subprocess

PREFIX = "phx"
_NAME = re.compile(rf"^{PREFIX}(\d+)s\d+(?:r\d+|br)$")
_sets = itertools.count()
_live: set[NetNamespaces] = set()


def skip_reason() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return (
            f"network namespaces need root (ip netns add); this process runs as uid "
            f"{os.geteuid()}, e.g. Termux on a phone"
        )
    return None


def _program(name: str) -> str:
    """iproute2's programs live in /usr/sbin, which a non-login PATH may lack."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `ip args...` (bounded); raises with its stderr when it fails and `check`."""
    proc = subprocess.run([_program("ip"), *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed ({proc.returncode}): {proc.stderr}")
    return proc


def tc(ns: str, *args: str) -> None:
    """Runs `tc -n ns args...` (bounded); raises with its stderr when it fails."""
    cmd = [_program("tc"), "-n", ns, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"`tc -n {ns} {' '.join(args)}` failed: {proc.stderr}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Deletes the namespaces of runs whose process is gone (a killed test); returns them."""
    removed = []
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = _NAME.match(name)
        if m and not _pid_alive(int(m.group(1))):
            ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def tbf_args(rate_mbit: float) -> list[str]:
    """A token bucket at `rate_mbit`: the bucket holds ~4 ms of traffic (at least 32 KiB, so
    TCP segments pass whole), the queue ~50 ms before packets drop."""
    rate_bytes = rate_mbit * 1e6 / 8
    burst = max(32 * 1024, int(rate_bytes * 0.004))
    return ["root", "tbf", "rate", f"{rate_mbit}mbit", "burst", str(burst), "latency", "50ms"]


class NetNamespaces:
    """`n` rank namespaces on one bridge; rank i has address 10.213.<subnet>.<i+1>/24."""

    def __init__(self, n: int, rate_mbit: float | None = None, subnet: int = 0) -> None:
        if not 1 <= n <= 200:
            raise ValueError(f"NetNamespaces: n={n} must be within [1, 200]")
        if rate_mbit is not None and rate_mbit <= 0:
            raise ValueError(f"NetNamespaces: rate_mbit={rate_mbit} must be positive")
        reason = skip_reason()
        if reason:
            raise PermissionError(reason)
        self.n = n
        self.rate_mbit = rate_mbit
        base = f"{PREFIX}{os.getpid()}s{next(_sets)}"
        self.bridge_ns = base + "br"
        self.names = [f"{base}r{i}" for i in range(n)]
        self.addrs = [f"10.213.{subnet}.{i + 1}" for i in range(n)]
        self.iface = "eth0"  # inside every rank namespace
        self._created: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> NetNamespaces:
        remove_stale()
        _live.add(self)
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _add_ns(self, name: str) -> None:
        ip("netns", "del", name, check=False)  # same pid reused after a crash
        ip("netns", "add", name)
        self._created.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _create(self) -> None:
        br = self.bridge_ns
        self._add_ns(br)
        ip("-n", br, "link", "add", "br0", "type", "bridge")
        ip("-n", br, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(zip(self.names, self.addrs)):
            self._add_ns(ns)
            port = f"v{i}"
            ip("-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", br, "link", "set", port, "master", "br0")
            ip("-n", br, "link", "set", port, "up")
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            if self.rate_mbit is not None:
                tc(ns, "qdisc", "add", "dev", "eth0", *tbf_args(self.rate_mbit))
                tc(br, "qdisc", "add", "dev", port, *tbf_args(self.rate_mbit))

    def close(self) -> None:
        """Deletes every namespace made (their veths and the bridge go with them). Processes
        still inside keep a namespace alive until they exit, so callers kill theirs first."""
        for name in reversed(self._created):
            ip("netns", "del", name, check=False)
        self._created.clear()
        _live.discard(self)

    # ------------------------------------------------------------------ use

    def exec_prefix(self, i: int) -> list[str]:
        """Command prefix running a program inside rank i's namespace (ip execs it, so the
        Popen pid is the program's own)."""
        return [_program("ip"), "netns", "exec", self.names[i]]

    def qdisc(self, i: int) -> str:
        """`tc qdisc show` of rank i's eth0 (for checks and reports)."""
        args = [_program("tc"), "-n", self.names[i], "qdisc", "show", "dev", "eth0"]
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout


@atexit.register
def _close_all() -> None:
    for net in list(_live):
        net.close()
