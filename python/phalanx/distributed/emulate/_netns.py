"""Network namespaces joined by a bridge, each link shaped by tc tbf: the network half of an
emulated phone cluster (the CPU and memory half is _cgroups.py).

Layout: one namespace holds the bridge (nothing touches the host's own networking), each
phone namespace has `lo` and `eth0` = one end of a veth pair whose other end is a bridge
port. A shaped link has a tbf qdisc in both directions (eth0 for what the phone sends, the
bridge port for what it receives), like a full-duplex switch port. The bridge itself has an
address too (`.254`), so a process entered into the bridge namespace (the launcher and its
rendezvous store) reaches every phone. netem is not available here, so there is no added
delay or loss, only rate, burst and queueing latency.

Needs root (`ip netns`). Namespaces are removed on close, at interpreter exit, and, when a
killed owner left some behind, by remove_stale() at the next start.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess

from ._names import is_stale, new_base

BRIDGE_HOST = 254  # last address byte of the bridge namespace on the phones' subnet
_live: set[NetNamespaces] = set()


def program(name: str) -> str:
    """iproute2's programs live in /usr/sbin, which a non-login PATH may lack."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def skip_reason() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return (
            f"network namespaces need root (ip netns add); this process runs as uid "
            f"{os.geteuid()}, e.g. Termux on a phone"
        )
    for tool in ("ip", "tc"):
        if not os.access(program(tool), os.X_OK):
            return f"network namespaces need iproute2's `{tool}`, which is not installed"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `ip args...` (bounded); raises with its stderr when it fails and `check`."""
    proc = subprocess.run([program("ip"), *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed ({proc.returncode}): {proc.stderr}")
    return proc


def tc(ns: str, *args: str) -> None:
    """Runs `tc -n ns args...` (bounded); raises with its stderr when it fails."""
    cmd = [program("tc"), "-n", ns, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"`tc -n {ns} {' '.join(args)}` failed: {proc.stderr}")


def kill_inside(ns: str) -> None:
    """SIGKILLs every process in namespace `ns` (a namespace outlives its name while any
    process is inside)."""
    out = ip("netns", "pids", ns, check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), 9)
        except (OSError, ValueError):
            pass


def remove_stale() -> list[str]:
    """Deletes the namespaces of owners that are gone (a killed run), and kills what still
    runs inside them; returns their names."""
    removed = []
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if is_stale(name):
            kill_inside(name)
            ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def tbf_args(
    rate_mbit: float | None = None,
    *,
    rate_bits: int | None = None,
    burst: int | None = None,
    latency_ms: float = 50.0,
) -> list[str]:
    """A token bucket at the rate (Mbit/s, or bits/s): by default the bucket holds ~4 ms of
    traffic (at least 32 KiB, so TCP segments pass whole), the queue `latency_ms` before
    packets drop."""
    bits = int(rate_mbit * 1e6) if rate_bits is None else int(rate_bits)
    if burst is None:
        burst = max(32 * 1024, int(bits / 8 * 0.004))
    return [
        "root",
        "tbf",
        "rate",
        f"{bits}bit",
        "burst",
        str(burst),
        "latency",
        f"{latency_ms:g}ms",
    ]


class NetNamespaces:
    """`n` phone namespaces on one bridge; phone i has address 10.213.<subnet>.<i+1>/24 and
    the bridge namespace 10.213.<subnet>.254.

    `rate_mbit` shapes every link alike; `rates` (bits/s, one per phone, None = unshaped)
    shapes each link on its own; `burst` (bytes) and `latency_ms` set the token bucket.

    `switches` (one switch number per phone) puts each switch's phones on a bridge of their
    own, joined to the core bridge br0 (which holds the bridge address) by a veth "uplink"
    shaped to `uplink_bits` (bits/s, None = unshaped) in both directions: a rack wired
    through several switches, for hierarchical all-reduce.
    """

    def __init__(
        self,
        n: int,
        rate_mbit: float | None = None,
        subnet: int = 0,
        *,
        rates: list[int | None] | None = None,
        burst: int | None = None,
        latency_ms: float = 50.0,
        switches: list[int] | None = None,
        uplink_bits: int | None = None,
    ) -> None:
        if not 1 <= n <= 200:
            raise ValueError(f"NetNamespaces: n={n} must be within [1, 200]")
        if rate_mbit is not None and not rate_mbit > 0:
            raise ValueError(f"NetNamespaces: rate_mbit={rate_mbit} must be positive")
        if rates is not None and len(rates) != n:
            raise ValueError(f"NetNamespaces: rates={rates} has {len(rates)} entries for n={n}")
        if not 0 <= subnet <= 255:
            raise ValueError(f"NetNamespaces: subnet={subnet} must be within [0, 255]")
        if switches is not None and (
            len(switches) != n or any(not isinstance(s, int) or not 0 <= s < 64 for s in switches)
        ):
            raise ValueError(
                f"NetNamespaces: switches={switches} must be {n} integers within [0, 64)"
            )
        if uplink_bits is not None and (switches is None or not uplink_bits > 0):
            raise ValueError(
                f"NetNamespaces: uplink_bits={uplink_bits} needs switches and a positive rate"
            )
        reason = skip_reason()
        if reason:
            raise PermissionError(reason)
        self.n = n
        self.rate_mbit = rate_mbit
        if rates is None:
            rates = [None if rate_mbit is None else int(rate_mbit * 1e6)] * n
        self.rates = list(rates)
        self.burst = burst
        self.latency_ms = latency_ms
        self.switches = None if switches is None else list(switches)
        self.uplink_bits = uplink_bits
        base = new_base()
        self.bridge_ns = base + "br"
        self.names = [f"{base}r{i}" for i in range(n)]
        self.addrs = [f"10.213.{subnet}.{i + 1}" for i in range(n)]
        self.bridge_addr = f"10.213.{subnet}.{BRIDGE_HOST}"
        self.iface = "eth0"  # inside every phone namespace
        self._created: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> NetNamespaces:
        self.create()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def create(self) -> None:
        """Makes the namespaces; on any failure removes what was made, then raises."""
        remove_stale()
        _live.add(self)
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _add_ns(self, name: str) -> None:
        ip("netns", "del", name, check=False)  # same pid reused after a crash
        ip("netns", "add", name)
        self._created.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _shape(self, ns: str, dev: str, rate: int) -> None:
        args = tbf_args(rate_bits=rate, burst=self.burst, latency_ms=self.latency_ms)
        tc(ns, "qdisc", "add", "dev", dev, *args)

    def _create(self) -> None:
        br = self.bridge_ns
        self._add_ns(br)
        ip("-n", br, "link", "add", "br0", "type", "bridge")
        ip("-n", br, "addr", "add", f"{self.bridge_addr}/24", "dev", "br0")
        ip("-n", br, "link", "set", "br0", "up")
        for s in sorted(set(self.switches or [])):
            # Switch s: bridge sw<s>, joined to br0 by the veth pair up<s> (br0) - dn<s> (sw<s>).
            ip("-n", br, "link", "add", f"sw{s}", "type", "bridge")
            ip("-n", br, "link", "add", f"up{s}", "type", "veth", "peer", "name", f"dn{s}")
            ip("-n", br, "link", "set", f"up{s}", "master", "br0")
            ip("-n", br, "link", "set", f"dn{s}", "master", f"sw{s}")
            for dev in (f"sw{s}", f"up{s}", f"dn{s}"):
                ip("-n", br, "link", "set", dev, "up")
            if self.uplink_bits is not None:
                self._shape(br, f"up{s}", self.uplink_bits)
                self._shape(br, f"dn{s}", self.uplink_bits)
        for i, (ns, addr) in enumerate(zip(self.names, self.addrs)):
            self._add_ns(ns)
            port = f"v{i}"
            bridge = "br0" if self.switches is None else f"sw{self.switches[i]}"
            ip("-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", br, "link", "set", port, "master", bridge)
            ip("-n", br, "link", "set", port, "up")
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            if self.rates[i] is not None:
                self._shape(ns, "eth0", self.rates[i])
                self._shape(br, port, self.rates[i])

    def close(self) -> None:
        """Kills whatever still runs inside, then deletes every namespace made (their veths
        and the bridge go with them)."""
        for name in reversed(self._created):
            kill_inside(name)
            ip("netns", "del", name, check=False)
        self._created.clear()
        _live.discard(self)

    # ------------------------------------------------------------------ use

    def exec_prefix(self, i: int) -> list[str]:
        """Command prefix running a program inside phone i's namespace (ip execs it, so the
        Popen pid is the program's own)."""
        return [program("ip"), "netns", "exec", self.names[i]]

    def qdisc(self, i: int) -> str:
        """`tc qdisc show` of phone i's eth0 (for checks and reports)."""
        args = [program("tc"), "-n", self.names[i], "qdisc", "show", "dev", "eth0"]
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout


@atexit.register
def _close_all() -> None:
    for net in list(_live):
        net.close()
