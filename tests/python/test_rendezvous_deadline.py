"""init_process_group(timeout=T) fails within T in total when a peer's packets are dropped
(issue 18: it took 5 T, Gloo's pair connect waiting five times its context timeout, and then
said "within T").

Two rank namespaces on the bridge of tests/python/netns.py. Rank 0 hosts the store on its
first address and runs Gloo on a second one, which rank 1's namespace blackholes: rank 0's
connection attempts to rank 1 go unanswered (rank 1's replies are dropped, silently) while
the store stays reachable.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from _spawn import PYTHON, free_port, python_env
from netns import NetNamespaces, ip, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))

# Rank 0's Gloo address is the larger, so rank 0 is the side that connects (Gloo orders a pair
# by address): its SYN reaches rank 1, whose SYN-ACK goes into the blackhole.
GLOO_ADDR0 = "10.213.0.101"
TIMEOUT = 4.0
MARGIN = 3.0  # process start-up and a loaded machine

RANK = r"""
import sys, time
import phalanx.distributed as dist
t0 = time.monotonic()
try:
    dist.init_process_group("gloo", rank=int(sys.argv[1]), world_size=2, timeout=float(sys.argv[2]))
except Exception as e:
    print(type(e).__name__, "|", round(time.monotonic() - t0, 2), "|", e, flush=True)
else:
    print("joined", "|", round(time.monotonic() - t0, 2), flush=True)
"""


def test_init_process_group_fails_within_its_timeout_when_peer_packets_are_dropped():
    port = free_port()
    with NetNamespaces(2) as net:
        store_addr = net.addrs[0]
        ip("-n", net.names[0], "addr", "add", GLOO_ADDR0 + "/24", "dev", net.iface)
        # Rank 0's connections to rank 1 leave from the Gloo address (else the kernel picks
        # the interface's first one, which rank 1 answers).
        peer = net.addrs[1] + "/32"
        ip("-n", net.names[0], "route", "add", peer, "dev", net.iface, "src", GLOO_ADDR0)
        ip("-n", net.names[1], "route", "add", "blackhole", GLOO_ADDR0 + "/32")
        env = python_env(
            MASTER_ADDR=store_addr,
            MASTER_PORT=str(port),
            PHALANX_JOB_ID=f"deadline-{port}",
            PHALANX_HEARTBEAT_INTERVAL="0",  # only the rendezvous is under test
        )
        procs = []
        for rank, addr in enumerate([GLOO_ADDR0, net.addrs[1]]):
            procs.append(
                subprocess.Popen(
                    [*net.exec_prefix(rank), *PYTHON, "-c", RANK, str(rank), str(TIMEOUT)],
                    env=dict(env, PHALANX_ADDR=addr),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            time.sleep(0.3)  # rank 0 hosts the store
        outs = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=60)
                outs.append((out.strip(), err))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    report = "\n".join(f"rank {r}: {o}\n{e[-2000:]}" for r, (o, e) in enumerate(outs))
    print(report)
    for rank, (out, err) in enumerate(outs):
        assert out, f"rank {rank} printed nothing; stderr:\n{err[-3000:]}"
        kind, took, message = (s.strip() for s in (out + " | ").split("|", 2))
        assert kind == "TimeoutError", report
        assert float(took) < TIMEOUT + MARGIN, f"rank {rank} failed after {took} s\n{report}"
        assert "4000 ms" in message, f"rank {rank}: the message must name the timeout\n{report}"
    assert not set(net.names) & set(ip("netns", "list").stdout.split())


def test_init_returns_only_once_every_rank_has_started():
    """The last step of init_process_group: no rank returns (and may exit, taking rank 0's
    store with it) before every rank has its connections and its watchdog."""
    import threading

    import phalanx.distributed as dist
    from phalanx.distributed import _all_started

    store = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, timeout=30, job_id="started")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"rank 0: only 1 of 2 ranks finished starting"):
        _all_started(store, "g1", 0, 2, 0.3)
    assert 0.25 < time.monotonic() - t0 < 5
    # a late rank 1 (its own connection, as in its own process) releases rank 0; both return
    other = dist.TCPStore("127.0.0.1", store.port, 2, timeout=30, job_id="started")
    returned = []
    late = threading.Timer(0.3, lambda: (_all_started(other, "g2", 1, 2, 10), returned.append(1)))
    late.start()
    t0 = time.monotonic()
    _all_started(store, "g2", 0, 2, 10)
    assert time.monotonic() - t0 >= 0.25
    late.join(10)
    assert returned == [1]
