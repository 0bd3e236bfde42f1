"""Turning recorded events into one Chrome-trace / Perfetto JSON file: each rank's payload
(its events, thread names, clock offsets) goes to rank 0 through the store, in compressed
chunks under the store's value limit; rank 0 maps every time to its own clock, adds the idle
gaps of each main thread, and writes the file. Ranks that never send are listed in
otherData.missing_ranks after a bounded wait."""

from __future__ import annotations

import json
import os
import socket
import zlib

CHUNK = 8 << 20  # below the store's 16 MiB value limit
IDLE_MIN_NS = 1000  # gaps shorter than 1 us are bookkeeping, not idle time


def payload(rank: int, events: list, thread_names: dict, main_tid: int, syncs: list) -> dict:
    return {
        "rank": rank,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "events": events,
        "threads": {str(k): v for k, v in thread_names.items()},
        "main_tid": main_tid,
        "syncs": syncs,  # [(local time ns, offset ns, round trip ns)]
    }


def send(store, prefix: str, data: dict) -> None:
    blob = zlib.compress(json.dumps(data).encode())
    chunks = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
    base = f"{prefix}/trace/{data['rank']}"
    for i, c in enumerate(chunks):
        store.set(f"{base}/{i}", c)
    store.set(f"{base}/n", str(len(chunks)))


def receive(store, prefix: str, rank: int, timeout: float) -> dict | None:
    base = f"{prefix}/trace/{rank}"
    try:
        store.wait([f"{base}/n"], timeout)
    except Exception:
        return None
    n = int(store.get(f"{base}/n"))
    blob = b"".join(store.get(f"{base}/{i}") for i in range(n))
    return json.loads(zlib.decompress(blob))


def _mapper(syncs: list):
    """local ns -> rank 0's ns: the offset at the nearest measurement, interpolated linearly
    between two (clocks drift apart slowly; a long run on phones can gain milliseconds)."""
    if not syncs:
        return lambda t: t
    if len(syncs) == 1 or syncs[-1][0] == syncs[0][0]:
        off = syncs[0][1]
        return lambda t: t + off
    (t_a, o_a, _), (t_b, o_b, _) = syncs[0], syncs[-1]
    slope = (o_b - o_a) / (t_b - t_a)
    return lambda t: t + o_a + slope * (t - t_a)


def _idle(events: list, main_tid: int) -> list:
    """Gaps between the main thread's outermost spans, as ("X", "idle", ...) events."""
    spans = sorted((e for e in events if e[0] == "X" and e[3] == main_tid), key=lambda e: e[4])
    out, end = [], None
    for e in spans:
        if end is not None and e[4] - end >= IDLE_MIN_NS:
            out.append(("X", "idle", "idle", main_tid, end, e[4], None))
        end = e[5] if end is None else max(end, e[5])
    return out


def merge(payloads: list[dict], world: int, job: str) -> dict:
    trace, offsets, missing = [], {}, []
    mapped = []
    for p in payloads:
        to0 = _mapper(p["syncs"])
        mapped.append((p, to0))
    times = [to0(e[4]) for p, to0 in mapped for e in p["events"]]
    origin = min(times) if times else 0

    def us(t, to0):
        return round((to0(t) - origin) / 1000.0, 3)

    for p, to0 in mapped:
        r = p["rank"]
        offsets[str(r)] = {
            "offset_us": [round(s[1] / 1000.0, 1) for s in p["syncs"]],
            "round_trip_us": [round(s[2] / 1000.0, 1) for s in p["syncs"]],
        }
        trace.append(
            {
                "ph": "M",
                "name": "process_name",
                "pid": r,
                "tid": 0,
                "args": {"name": f"rank {r} ({p['host']}, pid {p['pid']})"},
            }
        )
        trace.append(
            {"ph": "M", "name": "process_sort_index", "pid": r, "tid": 0, "args": {"sort_index": r}}
        )
        tids = {}
        main = p["main_tid"]
        for tid_text in p["threads"]:
            tid = int(tid_text)
            tids[tid] = 0 if tid == main else len(tids) + 1
        tids.setdefault(main, 0)
        for tid, small in tids.items():
            name = "main" if tid == main else p["threads"].get(str(tid), str(tid))
            trace.append(
                {"ph": "M", "name": "thread_name", "pid": r, "tid": small, "args": {"name": name}}
            )
        for e in p["events"] + _idle(p["events"], main):
            kind, name, cat, tid, t0, t1, args = e
            ev = {"ph": kind, "name": name, "pid": r, "tid": tids.get(tid, 0), "ts": us(t0, to0)}
            if kind == "X":
                ev["dur"] = max(0.0, round(us(t1, to0) - ev["ts"], 3))
                ev["cat"] = cat
            elif kind == "C":
                ev["args"] = args
            else:  # async begin/end: t1 holds the id
                ev["cat"], ev["id"] = cat, f"{r}.{t1}"
            if args and kind != "C":
                ev["args"] = args
            trace.append(ev)
    have = {p["rank"] for p in payloads}
    missing = [r for r in range(world) if r not in have]
    return {
        "traceEvents": trace,
        "displayTimeUnit": "ms",
        "otherData": {
            "job": job,
            "world_size": world,
            "clock": "rank 0's monotonic clock; ts in us from the first event",
            "clock_offsets": offsets,
            "missing_ranks": missing,
        },
    }


def write(trace: dict, path: str) -> str:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(trace, f)
    os.replace(tmp, path)
    return path
