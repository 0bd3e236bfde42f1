"""Emulated phones behind several switches (PhoneCluster switches= / uplink=, used by
benchmarks/hierarchical_bench.py): each switch is a bridge joined to the core by a shaped
uplink, phones on different switches reach each other through it, and the hostfile tells
the launcher each phone's switch. Root only; skips naming what is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phalanx.distributed.emulate import PhoneCluster, missing_capability
from phalanx.distributed.emulate._netns import NetNamespaces, program

MISSING = missing_capability(memory=False)
# One TCP exchange: the listener (in one phone) answers the first connection, the client (in
# another) prints what it got. No ping on this machine; a TCP connection is what ranks use.
LISTEN = (
    "import socket, sys; s = socket.create_server((sys.argv[1], 0)); print(s.getsockname()[1],"
    " flush=True); c, _ = s.accept(); c.sendall(b'pong'); c.close()"
)
CONNECT = (
    "import socket, sys; c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10);"
    " print(c.recv(4).decode())"
)
BARE = [sys.executable, "-I", "-S", "-c"]


def exchange(c, src: int, dst: int) -> str:
    server = subprocess.Popen(
        c.net.exec_prefix(dst) + BARE + [LISTEN, c.addrs[dst]], stdout=subprocess.PIPE, text=True
    )
    try:
        port = server.stdout.readline().strip()
        client = subprocess.run(
            c.net.exec_prefix(src) + BARE + [CONNECT, c.addrs[dst], port],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return client.stdout.strip() or client.stderr
    finally:
        server.kill()
        server.wait()


needs_phones = pytest.mark.skipif(MISSING is not None, reason=f"no emulated phones: {MISSING}")


@needs_phones
def test_phones_on_two_switches_reach_each_other_through_shaped_uplinks():
    with PhoneCluster(3, link="1gbit", switches=[0, 0, 1], uplink="50mbit") as c:
        with open(c.hostfile) as f:
            lines = [ln for ln in f if not ln.startswith("#")]
        assert [ln.split()[-1] for ln in lines] == ["switch=0", "switch=0", "switch=1"]
        br = c.net.bridge_ns
        for dev in ("up0", "dn0", "up1", "dn1"):
            show = subprocess.run(
                [program("tc"), "-n", br, "qdisc", "show", "dev", dev],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            assert "tbf" in show and "50Mbit" in show, (dev, show)
        for src, dst in ((0, 1), (0, 2), (2, 1)):  # inside switch 0, and across the uplinks
            assert exchange(c, src, dst) == "pong", (src, dst)


def test_bad_switches_and_uplinks_are_named():
    if MISSING is not None:
        pytest.skip(f"no emulated phones: {MISSING}")
    with pytest.raises(ValueError, match=r"switches=\[0, 1\] must be 3 integers"):
        NetNamespaces(3, switches=[0, 1])
    with pytest.raises(ValueError, match="uplink_bits=1000000 needs switches"):
        NetNamespaces(3, uplink_bits=1_000_000)
