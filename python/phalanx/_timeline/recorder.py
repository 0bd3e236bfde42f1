"""The span recorder the instrumented code calls. Recording is off unless a timeline runs:
every site first reads the module flag ACTIVE, so a disabled timeline costs one attribute
read per forward, backward, step, bucket or batch (test_timeline measures it).

Times are time.perf_counter_ns() of this process (monotonic); export maps them to rank 0's
clock with the offsets measured through the store.
"""

from __future__ import annotations

import functools
import threading
import time

ACTIVE = False

now = time.perf_counter_ns
# ("X", name, cat, tid, t0, t1, args) complete spans; ("C", name, "", tid, t, t, values)
# counter samples; ("b"/"e", name, cat, tid, t, id, args) async begin/end (all-reduces in
# flight). list.append is atomic under the GIL: threads record without a lock.
events: list[tuple] = []
thread_names: dict[int, str] = {}


def _tid() -> int:
    tid = threading.get_ident()
    if tid not in thread_names:
        thread_names[tid] = threading.current_thread().name
    return tid


def complete(name: str, cat: str, t0: int, t1: int, args: dict | None = None) -> None:
    events.append(("X", name, cat, _tid(), t0, t1, args))


def counter(name: str, values: dict, t: int | None = None) -> None:
    t = now() if t is None else t
    events.append(("C", name, "", _tid(), t, t, values))


def async_begin(name: str, cat: str, ident: int, args: dict | None = None) -> None:
    events.append(("b", name, cat, _tid(), now(), ident, args))


def async_end(name: str, cat: str, ident: int) -> None:
    events.append(("e", name, cat, _tid(), now(), ident, None))


class span:
    """`with span("name"):` records a complete span on this thread while a timeline runs."""

    __slots__ = ("name", "cat", "args", "t0")

    def __init__(self, name: str, cat: str = "user", args: dict | None = None):
        self.name, self.cat, self.args, self.t0 = name, cat, args, 0

    def __enter__(self):
        if ACTIVE:
            self.t0 = now()
        return self

    def __exit__(self, *exc):
        if ACTIVE and self.t0:
            complete(self.name, self.cat, self.t0, now(), self.args)
        return False


_inflight: dict[int, int] = {}  # bucket index -> async id of its all-reduce in flight
_next_id = [0]


def bucket_launched(index: int, numel: int, t0: int) -> None:
    """DDP started bucket `index`'s all-reduce (its hook call took t0..now)."""
    complete(f"all-reduce launch (bucket {index})", "allreduce", t0, now(), {"numel": numel})
    _next_id[0] += 1
    _inflight[index] = _next_id[0]
    async_begin(f"all-reduce bucket {index}", "allreduce", _next_id[0], {"numel": numel})


def bucket_waited(index: int, t0: int) -> None:
    """DDP waited t0..now for bucket `index`'s all-reduce to finish."""
    complete(f"all-reduce wait (bucket {index})", "allreduce", t0, now())
    ident = _inflight.pop(index, None)
    if ident is not None:
        async_end(f"all-reduce bucket {index}", "allreduce", ident)


def traced(name: str, cat: str, busy: threading.local | None = None):
    """Decorator: the call becomes a span `name` while a timeline runs; otherwise one flag
    read. Re-entrant calls (a subclass's step calling super().step()) record once: wrappers
    given the same `busy` count as one."""

    def wrap(fn, busy=busy):
        if busy is None:
            busy = threading.local()

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if not ACTIVE or getattr(busy, "on", False):
                return fn(*args, **kwargs)
            busy.on = True
            t0 = now()
            try:
                return fn(*args, **kwargs)
            finally:
                busy.on = False
                complete(name, cat, t0, now())

        wrapper.__phalanx_traced__ = True
        return wrapper

    return wrap
