"""The rendezvous store under hostile clients (issue 18).

The store server runs inside the launcher or rank 0, so no client may take that process down
or grow it without bound. Each test runs the server in a process of its own (to read its
memory, limit it, and see whether it survives) and attacks it over raw sockets.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
import time

import numpy as np
import pytest
from _spawn import python_env, run_ranks, start_python

import phalanx
import phalanx.distributed as dist

JOB, TOKEN = "hostile-job", "hostile-token"

# The server process: hosts the store, optionally under an address-space limit, prints its
# port, and lives until its stdin closes.
SERVER = r"""
import os, resource, sys
import phalanx.distributed as dist
store = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=60, job_id=sys.argv[1],
                      token=sys.argv[2])
extra_mb = int(sys.argv[3])
if extra_mb:
    with open("/proc/self/status") as f:
        vm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    limit = (vm_kb << 10) + (extra_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
print(store.port, flush=True)
sys.stdin.read()
"""


class StoreProcess:
    def __init__(self, env=None, extra_address_space_mb=0):
        self.proc = start_python(
            ["-c", SERVER, JOB, TOKEN, str(extra_address_space_mb)],
            env=python_env(**(env or {})),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), f"store did not start: {line!r} {self.proc.stderr.read()}"
        self.port = int(line)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    def alive(self) -> bool:
        return self.proc.poll() is None

    def client(self, timeout=10.0):
        return dist.TCPStore("127.0.0.1", self.port, timeout=timeout, job_id=JOB, token=TOKEN)

    def stderr(self) -> str:
        return self.proc.stderr.read() if not self.alive() else ""

    def close(self):
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return s


def header(op: int, length: int, job=JOB, token=TOKEN) -> bytes:
    """A request frame's length and header: magic, opcode, job id, token."""
    j, t = job.encode(), token.encode()
    return (
        struct.pack("<I", length)
        + b"PHX1"
        + bytes([op])
        + struct.pack("<I", len(j))
        + j
        + struct.pack("<I", len(t))
        + t
    )


def closed_by_server(s: socket.socket, within: float) -> bool:
    """Whether the server closes this connection within `within` seconds."""
    s.settimeout(within)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except OSError:  # reset
        return True


def store_works(store: StoreProcess, key="k") -> None:
    c = store.client()
    c.set(key, b"value")
    assert c.get(key) == b"value"


SET = 2


def test_a_64_mib_frame_declared_before_authentication_does_not_grow_the_server():
    with StoreProcess() as store:
        store_works(store)
        before = store.rss_mb()
        # Each declares a 64 MiB frame and sends its first byte: the old server allocated and
        # zero-filled the declared length at once, before looking at job id or token.
        attackers = [raw(store.port) for _ in range(4)]
        for s in attackers:
            s.sendall(struct.pack("<I", (64 << 20) - 1) + b"P")
        time.sleep(1.0)
        grown = store.rss_mb() - before
        assert grown < 24, f"the server grew by {grown:.0f} MiB for unauthenticated clients"
        # Authenticated but over the set's limit: refused unread, too.
        liar = raw(store.port)
        liar.sendall(header(SET, (64 << 20) - 1))
        assert closed_by_server(liar, 5)
        grown = store.rss_mb() - before
        assert grown < 24, f"the server grew by {grown:.0f} MiB for an oversized set"
        store_works(store, "after")
        assert store.alive()
        for s in attackers:
            s.close()


def test_idle_and_stalled_clients_are_dropped_on_time():
    env = {"PHALANX_STORE_HANDSHAKE_TIMEOUT_MS": "1000", "PHALANX_STORE_STALL_TIMEOUT_MS": "1500"}
    with StoreProcess(env) as store:
        t0 = time.monotonic()
        idle = [raw(store.port) for _ in range(50)]
        slow_header = raw(store.port)
        slow_header.sendall(header(SET, 1000)[:9])  # half a header, then silence
        stalled = raw(store.port)
        stalled.sendall(header(SET, 1000) + b"xy")  # a valid header, half a body
        legit = store.client()  # idles between requests: never dropped for that
        assert not closed_by_server(idle[0], 0.5), "dropped before its handshake timeout"
        for s in idle + [slow_header]:
            assert closed_by_server(s, 5), "an unauthenticated client was never dropped"
        took = time.monotonic() - t0
        assert 0.9 <= took < 5, f"handshake timeout of 1 s enforced after {took:.1f} s"
        assert closed_by_server(stalled, 5), "a stalled frame was never dropped"
        took = time.monotonic() - t0
        assert 1.4 <= took < 7, f"stall timeout of 1.5 s enforced after {took:.1f} s"
        time.sleep(0.5)
        legit.set("still", b"here")
        assert legit.get("still") == b"here"


def test_the_connection_cap_evicts_unauthenticated_clients_first():
    with StoreProcess({"PHALANX_STORE_MAX_CONNECTIONS": "16"}) as store:
        members = [store.client() for _ in range(4)]  # authenticated: kept
        idle = [raw(store.port) for _ in range(40)]
        time.sleep(1.0)
        dropped = sum(closed_by_server(s, 0.2) for s in idle)
        assert dropped >= 40 - 11, f"only {dropped} of 40 over a cap of 16 were closed"
        # A legitimate client still gets in (it replaces an idle one), and the members stay.
        store_works(store, "newcomer")
        for i, m in enumerate(members):
            m.set(f"m{i}", b"x")
        # Full of authenticated clients: a newcomer is refused, the store goes on. (The
        # server process's own client and the 4 members hold 5 of the 16 places.)
        more = [store.client() for _ in range(11)]
        with pytest.raises((RuntimeError, TimeoutError)):
            store.client(timeout=2.0)
        del more
        assert store.alive()


def _hammer(port: int, stop: threading.Event, counts: dict) -> None:
    """Oversized frames, garbage, half headers and idle connections, over and over."""
    idle = []
    i = 0
    while not stop.is_set():
        i += 1
        try:
            s = raw(port)
            kind = i % 4
            if kind == 0:
                s.sendall(struct.pack("<I", (64 << 20) - 1) + b"PHX1")
            elif kind == 1:
                s.sendall(os.urandom(512))
            elif kind == 2:
                s.sendall(header(SET, (48 << 20)))  # authenticated, over the limit
            if kind == 3 or len(idle) < 100:
                idle.append(s)
            else:
                s.close()
            counts["attacks"] = counts.get("attacks", 0) + 1
        except OSError:
            counts["refused"] = counts.get("refused", 0) + 1
            time.sleep(0.01)
        if len(idle) > 300:
            for s in idle[:100]:
                s.close()
            del idle[:100]
    for s in idle:
        s.close()


def case_all_reduce(rank, world):
    t = phalanx.from_numpy(np.full(1000, rank + 1, np.float32))
    dist.all_reduce(t)
    return float(t.numpy()[0])


def test_rendezvous_succeeds_while_hostile_clients_hammer_a_memory_limited_store():
    env = {"PHALANX_STORE_MAX_CONNECTIONS": "256", "PHALANX_STORE_HANDSHAKE_TIMEOUT_MS": "2000"}
    with StoreProcess(env, extra_address_space_mb=384) as store:
        stop = threading.Event()
        counts: dict = {}
        hammers = [
            threading.Thread(target=_hammer, args=(store.port, stop, counts)) for _ in range(3)
        ]
        for h in hammers:
            h.start()
        try:
            time.sleep(1.0)  # under attack before the job starts
            results = run_ranks(
                "test_store_hostile",
                "case_all_reduce",
                4,
                timeout=120,
                env={
                    "PHALANX_STORE_EXTERNAL": "1",
                    "MASTER_PORT": str(store.port),
                    "PHALANX_JOB_ID": JOB,
                    "PHALANX_TOKEN": TOKEN,
                },
            )
        finally:
            stop.set()
            for h in hammers:
                h.join()
        assert results == [10.0] * 4
        assert counts.get("attacks", 0) > 50, counts
        assert store.alive(), f"the store process died:\n{store.stderr()}"
        store_works(store, "after-attack")


def test_the_store_process_survives_an_address_space_limit_and_many_connections():
    with StoreProcess(extra_address_space_mb=192) as store:
        # The old server allocated each declared frame (bad_alloc) and started a thread per
        # connection (std::system_error), both uncaught: std::terminate ended the process.
        attackers = []
        for _ in range(64):
            s = raw(store.port)
            s.sendall(struct.pack("<I", (64 << 20) - 1) + b"PHX1")
            attackers.append(s)
        for _ in range(400):
            attackers.append(raw(store.port))
        time.sleep(1.5)
        assert store.alive(), f"the store process died:\n{store.stderr()}"
        store_works(store)
        for s in attackers:
            s.close()
        assert store.alive()
