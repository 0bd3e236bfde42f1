"""init_process_group(timeout=T) fails within T in total when a peer's packets are dropped
(issue 18: it took 5 T, Gloo's pair connect waiting five times its context timeout, and then
said "within T").

Two network namespaces joined by two veth pairs: rank 0 in one, rank 1 in the other. Over the
first link runs Gloo; rank 0's address there is blackholed inside rank 1's namespace, so rank
0's connection attempts to rank 1 go unanswered (rank 1's replies are dropped, silently).
Over the second link the store stays reachable. Namespaces are named dist-cpp-<pid>-*, removed
on exit and, when a killed
run left them, at the next start.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from _spawn import PYTHON, free_port, python_env

PREFIX = "dist-cpp-"
STORE_ADDR, STORE_ADDR1 = "10.215.0.1", "10.215.0.2"  # the store's link
# Gloo's link. Rank 0's address is the larger, so rank 0 is the side that connects (Gloo
# orders a pair by address): its SYN reaches rank 1, whose SYN-ACK goes into the blackhole.
GLOO_ADDR0, GLOO_ADDR1 = "10.214.0.101", "10.214.0.2"
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


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    ip = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"
    proc = subprocess.run([ip, *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {proc.stderr}")
    return proc


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return f"network namespaces need root (ip netns add); running as uid {os.geteuid()}"
    try:
        probe = f"{PREFIX}{os.getpid()}-probe"
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (RuntimeError, OSError) as e:
        return f"cannot create a network namespace here: {e}"
    return None


def _remove_stale() -> None:
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        m = re.match(rf"^{PREFIX}(\d+)-\w+", line)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            _ip("netns", "del", line.split()[0], check=False)


class DroppingLink:
    """Namespaces a (rank 0: the store on STORE_ADDR, Gloo on GLOO_ADDR0) and b (rank 1, Gloo
    on GLOO_ADDR1), where b drops everything it would send to GLOO_ADDR0."""

    def __init__(self):
        base = f"{PREFIX}{os.getpid()}"
        self.a, self.b = base + "-a", base + "-b"
        self.made: list[str] = []

    def __enter__(self):
        _remove_stale()
        try:
            for ns in (self.a, self.b):
                _ip("netns", "add", ns)
                self.made.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            for dev in ("eth0", "eth1"):
                _ip("-n", self.a, "link", "add", dev, "type", "veth", "peer", dev, "netns", self.b)
            _ip("-n", self.a, "addr", "add", GLOO_ADDR0 + "/24", "dev", "eth0")
            _ip("-n", self.b, "addr", "add", GLOO_ADDR1 + "/24", "dev", "eth0")
            _ip("-n", self.a, "addr", "add", STORE_ADDR + "/24", "dev", "eth1")
            _ip("-n", self.b, "addr", "add", STORE_ADDR1 + "/24", "dev", "eth1")
            for ns in (self.a, self.b):
                for dev in ("eth0", "eth1"):
                    _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", self.b, "route", "add", "blackhole", GLOO_ADDR0 + "/32")
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        for ns in reversed(self.made):
            _ip("netns", "del", ns, check=False)
        self.made.clear()

    def __exit__(self, *exc):
        self.close()


def test_init_process_group_fails_within_its_timeout_when_peer_packets_are_dropped():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    port = free_port()
    env = python_env()
    env.update(MASTER_ADDR=STORE_ADDR, MASTER_PORT=str(port), PHALANX_JOB_ID=f"deadline-{port}")
    env.update(PHALANX_HEARTBEAT_INTERVAL="0")  # only the rendezvous is under test
    with DroppingLink() as link:
        procs = []
        for rank, (ns, addr) in enumerate([(link.a, GLOO_ADDR0), (link.b, GLOO_ADDR1)]):
            cmd = [
                "/usr/sbin/ip",
                "netns",
                "exec",
                ns,
                *PYTHON,
                "-c",
                RANK,
                str(rank),
                str(TIMEOUT),
            ]
            procs.append(
                subprocess.Popen(
                    cmd,
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
    assert not [
        n for n in _ip("netns", "list").stdout.split() if n.startswith(f"{PREFIX}{os.getpid()}")
    ]
