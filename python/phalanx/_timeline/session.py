"""Starting and ending a timeline, and the hooks that exist only while one records:
Tensor.backward and autograd.backward are wrapped at start and restored at stop (DDP, the
optimizers and the data loader check recorder.ACTIVE themselves).

With PHALANX_TIMELINE=path, `import phalanx` starts recording, init_process_group measures
the clock offsets, and destroy_process_group (or the end of the process) measures them again,
gathers every rank's events on rank 0 and writes the merged file. A process that records no
span (the launcher, a sweep) writes nothing.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

from . import export, recorder
from .samplers import Sampler

ENV = "PHALANX_TIMELINE"
DEFAULT_INTERVAL = 0.2  # seconds between CPU samples (PHALANX_TIMELINE_INTERVAL)
GATHER_TIMEOUT = 60.0  # seconds rank 0 waits for the other ranks' events
CLOCK_TIMEOUT = 10.0  # seconds one clock ping waits for its answer


class _Session:
    def __init__(self, path: str | None, interval: float):
        self.path = path
        self.sampler = Sampler(interval)
        self.syncs: list = []
        self.main_tid = threading.main_thread().ident
        self.patched: list = []
        self.lock = threading.Lock()


_session: _Session | None = None
_busy_backward = threading.local()


def _traced_backward(fn):
    def backward(*args, **kwargs):
        if not recorder.ACTIVE or getattr(_busy_backward, "on", False):
            return fn(*args, **kwargs)
        _busy_backward.on = True
        t0 = recorder.now()
        try:
            return fn(*args, **kwargs)
        finally:
            _busy_backward.on = False
            recorder.complete("backward", "compute", t0, recorder.now())

    backward.__doc__ = fn.__doc__
    return backward


def _patch(owner, name: str) -> None:
    original = getattr(owner, name)
    setattr(owner, name, _traced_backward(original))
    _session.patched.append((owner, name, original))


def _skew() -> int:
    # Test hook: PHALANX_TIMELINE_TEST_SKEW=R:S pretends rank R's clock is S seconds off, so a
    # test can check that merging puts every rank back on rank 0's clock.
    rank, _, seconds = os.environ.get("PHALANX_TIMELINE_TEST_SKEW", "").partition(":")
    if not seconds or rank != os.environ.get("RANK"):
        return 0
    return int(float(seconds) * 1e9)


def recording() -> bool:
    return recorder.ACTIVE


def start(path: str | None = None, interval: float | None = None) -> None:
    global _session
    if recorder.ACTIVE:
        raise RuntimeError("a timeline is already recording; stop() it first")
    if interval is None:
        interval = float(os.environ.get("PHALANX_TIMELINE_INTERVAL", DEFAULT_INTERVAL))
    if interval < 0:
        raise ValueError(f"timeline interval must be >= 0 seconds, got {interval}")
    skew = _skew()
    if skew:
        import time

        recorder.now = lambda: time.perf_counter_ns() + skew
    recorder.events.clear()
    recorder.thread_names.clear()
    _session = _Session(path, interval)
    from .. import _C, autograd

    _patch(_C.Tensor, "backward")
    _patch(autograd, "backward")
    recorder.ACTIVE = True
    _session.sampler.start()
    joined()  # a process group already running: measure the offsets now


def _dist_state():
    dist = sys.modules.get("phalanx.distributed")
    return None if dist is None else dist._state


def _prefix(st) -> str:
    return st.store.key_prefix(*st.namespace, "timeline")


def joined() -> None:
    """A process group exists (init_process_group just ended): measure the clock offsets."""
    st = _dist_state()
    if _session is None or st is None:
        return
    _sync(st, "start")


def _sync(st, phase: str) -> None:
    from . import clock

    world = st.world.size()
    got = clock.measure(st.store, _prefix(st), phase, st.rank, world, CLOCK_TIMEOUT)
    if got is not None and world > 1:
        _session.syncs.append((recorder.now(), got[0], got[1]))


def _target(path: str | None, job: str) -> str:
    path = path or os.environ.get(ENV) or "timeline.json"
    if path.endswith(os.sep) or os.path.isdir(path):
        return os.path.join(path, f"{job}.trace.json")
    return path


def stop(_measure_clock: bool = True) -> str | None:
    """Ends the timeline. In a process group every rank must call it (destroy_process_group
    does): rank 0 gathers the events and writes the merged trace. Returns the path written
    (on the rank that wrote it), else None."""
    global _session
    s = _session
    if s is None or not recorder.ACTIVE:
        return None
    st = _dist_state()
    job = os.environ.get("PHALANX_JOB_ID", "phalanx")
    try:
        if _measure_clock and st is not None and st.world.size() > 1:
            _sync(st, "end")
    finally:
        recorder.ACTIVE = False
        s.sampler.stop()
        for owner, name, original in reversed(s.patched):
            setattr(owner, name, original)
        _session = None
    events = list(recorder.events)
    recorder.events.clear()
    rank = 0 if st is None else st.rank
    world = 1 if st is None else st.world.size()
    data = export.payload(rank, events, dict(recorder.thread_names), s.main_tid, s.syncs)
    if st is not None and world > 1 and rank != 0:
        export.send(st.store, _prefix(st), data)
        return None
    payloads = [data]
    for r in range(1, world):
        got = export.receive(st.store, _prefix(st), r, GATHER_TIMEOUT)
        if got is not None:
            payloads.append(got)
    if not any(e[0] == "X" for p in payloads for e in p["events"]):
        return None  # nothing ran here (a launcher or a sweep with PHALANX_TIMELINE set)
    trace = export.merge(payloads, world, job)
    path = export.write(trace, _target(s.path, job))
    missing = trace["otherData"]["missing_ranks"]
    if missing:
        print(
            f"phalanx timeline: no events from ranks {missing} (no timeline there, or gone)",
            file=sys.stderr,
        )
    return path


def _at_exit() -> None:
    if recorder.ACTIVE:
        try:
            # At exit a peer may be gone already: no second clock measurement to wait on.
            stop(_measure_clock=False)
        except Exception as e:  # the process is ending: say why there is no trace
            print(f"phalanx timeline: could not write the trace: {e}", file=sys.stderr)


atexit.register(_at_exit)


def start_from_env() -> None:
    if os.environ.get(ENV) and not recorder.ACTIVE:
        start(os.environ[ENV])
