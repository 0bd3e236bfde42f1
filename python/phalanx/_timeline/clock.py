"""Each rank's clock offset to rank 0, measured through the rendezvous store (Cristian's
algorithm): rank r writes a ping, rank 0 answers with its clock reading, and the offset is
that reading minus the midpoint of r's send and receive times; of several rounds, the one
with the shortest round trip wins. The store, not a collective, carries it: a rank without a
timeline never answers, and the waits end by a timeout instead of hanging a collective.
Both paths (r -> store -> 0, 0 -> store -> r) cross the same links, so the midpoint holds.
"""

from __future__ import annotations

from . import recorder

ROUNDS = 6


def _key(prefix: str, phase: str, kind: str, rank: int, i: int) -> str:
    return f"{prefix}/clock/{phase}/{kind}/{rank}/{i}"


def measure(store, prefix: str, phase: str, rank: int, world: int, timeout: float):
    """On rank r > 0: (offset_ns, round_trip_ns) to add to this rank's times to get rank 0's,
    or None if rank 0 did not answer. On rank 0: answers every rank; returns (0, 0)."""
    if rank == 0:
        for r in range(1, world):
            for i in range(ROUNDS):
                try:
                    store.wait([_key(prefix, phase, "ping", r, i)], timeout)
                except Exception:  # that rank records no timeline (or is gone): skip it
                    break
                store.set(_key(prefix, phase, "pong", r, i), str(recorder.now()))
        return 0, 0
    best = None
    for i in range(ROUNDS):
        t1 = recorder.now()
        store.set(_key(prefix, phase, "ping", rank, i), b"1")
        try:
            store.wait([_key(prefix, phase, "pong", rank, i)], timeout)
        except Exception:
            return best
        t0 = int(store.get(_key(prefix, phase, "pong", rank, i)))
        t2 = recorder.now()
        sample = (t0 - (t1 + t2) // 2, t2 - t1)
        if best is None or sample[1] < best[1]:
            best = sample
    return best
