"""The rendezvous store serves many clients from one event loop (issue 15, 138 ranks).

At 138 ranks every rank holds a store connection and a heartbeat connection (276 at once); a
thread per connection would be 276 threads in the launcher. Here 200 clients each leave a get
pending at the same time, and the server process must not grow a thread for any of them.
"""

from __future__ import annotations

import socket
import struct
import time

from test_store_hostile import StoreProcess, header, raw

GET = 3
CLIENTS = 200


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def get_request(key: str, timeout_ms: int) -> bytes:
    k = key.encode()
    fields = struct.pack("<I", len(k)) + k + struct.pack("<Q", timeout_ms)
    head = header(GET, 0)
    # The frame length counts everything after itself: the header's rest and the fields.
    return struct.pack("<I", len(head) - 4 + len(fields)) + head[4:] + fields


def read_reply(s: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            assert chunk, "the store closed a waiting client"
            data += chunk
        return data

    (length,) = struct.unpack("<I", exactly(4))
    return exactly(length)


def test_200_concurrent_pending_gets_are_served_without_a_thread_each():
    with StoreProcess() as store:
        pid = store.proc.pid
        baseline = threads_of(pid)
        clients = [raw(store.port) for _ in range(CLIENTS)]
        for s in clients:
            s.sendall(get_request("go", 60_000))
        time.sleep(0.5)  # every get is a pending waiter in the server now
        during = threads_of(pid)
        assert during <= baseline + 1, (
            f"the store process went from {baseline} to {during} threads "
            f"with {CLIENTS} clients waiting"
        )
        store.client().set("go", b"now")
        for s in clients:
            s.settimeout(20)
            reply = read_reply(s)
            # status OK, then the value as length-prefixed bytes
            assert reply == b"\x00" + struct.pack("<I", 3) + b"now"
        assert threads_of(pid) <= baseline + 1
        for s in clients:
            s.close()
        assert store.alive()
