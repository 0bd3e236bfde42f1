"""Reachability, round-trip latency and TCP bandwidth to a peer, measured through phalanx's own
rendezvous store (the transport every job's start-up and failure detection runs on): one side
serves a store (`phalanx doctor --serve`), the other times small requests (latency) and large
values sent and fetched (bandwidth). A store value is capped at 16 MiB, so 4 MiB is sent."""

from __future__ import annotations

import os
import statistics
import time
import uuid

from .checks import FAIL, OK, WARN, Check

# Every doctor store is its own job: real jobs' stores refuse it, and it refuses them.
JOB_ID = "phalanx-doctor"
PAYLOAD_BYTES = 4 << 20
PINGS = 20
TRANSFERS = 3
# Below this a phone cluster's all-reduce is link-bound for any real model; wired Ethernet
# adapters on phones give 90-940 Mbit/s, Wi-Fi often less than this.
SLOW_LINK_MBIT = 50.0


def parse_peer(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--peer {text!r}: expected HOST:PORT with a port in 1..65535")
    return host, int(port)


def serve(port: int, seconds: float | None, announce=print) -> None:
    """Runs a doctor store on `port` (0: any free port) until `seconds` pass or Ctrl-C."""
    from ..distributed import TCPStore

    store = TCPStore("0.0.0.0", port, is_master=True, timeout=30, job_id=JOB_ID, token="")
    announce(
        f"phalanx doctor: serving on port {store.port}; peers run:"
        f" phalanx doctor --peer THIS_HOST:{store.port}"
    )
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass


def measure(peer: str, timeout: float = 10.0) -> Check:
    """One row: the peer's latency and bandwidth, or why it cannot be reached and what to do."""
    name = f"peer {peer}"
    try:
        host, port = parse_peer(peer)
    except ValueError as e:
        return Check(name, str(e), FAIL, "pass --peer HOST:PORT")
    from ..distributed import TCPStore

    try:
        store = TCPStore(host, port, is_master=False, timeout=timeout, job_id=JOB_ID, token="")
    except (
        Exception
    ) as e:  # refused, unreachable, timed out, refused handshake: all the same verdict
        return Check(
            name,
            f"unreachable: {e}",
            FAIL,
            f"start `phalanx doctor --serve --port {port}` on {host};"
            " check its address, cable and firewall",
        )
    key = f"doctor/{os.getpid()}-{uuid.uuid4().hex}"
    try:
        rtts = []
        for _ in range(PINGS):
            start = time.perf_counter()
            store.add(key + "/ping", 1)
            rtts.append(time.perf_counter() - start)
        payload = os.urandom(PAYLOAD_BYTES)
        up = down = 0.0
        for _ in range(TRANSFERS):
            start = time.perf_counter()
            store.set(key + "/data", payload)
            up = max(up, PAYLOAD_BYTES * 8 / (time.perf_counter() - start) / 1e6)
            start = time.perf_counter()
            back = store.get(key + "/data")
            down = max(down, PAYLOAD_BYTES * 8 / (time.perf_counter() - start) / 1e6)
            if back != payload:
                return Check(name, "data came back corrupted", FAIL, "replace the cable or adapter")
        store.set(key + "/data", b"")  # give the serving side its memory back
    except Exception as e:
        return Check(
            name, f"failed during measurement: {e}", FAIL, "check the link (cable, adapter, switch)"
        )
    rtt_ms = statistics.median(rtts) * 1e3
    value = f"rtt {rtt_ms:.2f} ms, up {up:.0f} Mbit/s, down {down:.0f} Mbit/s"
    if min(up, down) < SLOW_LINK_MBIT:
        return Check(
            name, value, WARN, "slow link: use wired Ethernet (USB adapter) instead of Wi-Fi"
        )
    return Check(name, value, OK)
