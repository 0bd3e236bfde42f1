"""phalanx.utils.timeline: where a training step's time goes, per rank, as a Chrome-trace /
Perfetto JSON file (open it in https://ui.perfetto.dev or chrome://tracing).

    PHALANX_TIMELINE=runs/trace.json phalanx launch --nproc 2 train.py   # the whole job

or from code (every rank of a process group calls start and stop)::

    from phalanx.utils import timeline
    timeline.start("runs/trace.json")
    ... train ...
    with timeline.span("evaluate"): ...
    timeline.stop()          # rank 0 writes the merged file; destroy_process_group also stops

Recorded per rank: forward (DDP), backward, optimizer step, each DDP bucket's all-reduce
(launch, and wait at the end of backward; an async track shows it in flight), data loading
(DataLoader batches), idle time (gaps between those on the main thread), and CPU frequency and
temperature samples where /sys lets us read them. The ranks' clocks are put on rank 0's with
offsets measured through the rendezvous store. A path that is a directory (or ends with /)
gets one file per job, <dir>/<job id>.trace.json. Overhead while not recording: one flag read
per instrumented call. See docs/experiments.md.
"""

from __future__ import annotations

from .._timeline.recorder import span
from .._timeline.session import recording, start, stop


def mark(name: str, **args) -> None:
    """A zero-length span `name` (an event) on this thread, while recording."""
    from .._timeline import recorder

    if recorder.ACTIVE:
        t = recorder.now()
        recorder.complete(name, "user", t, t, args or None)


__all__ = ["mark", "recording", "span", "start", "stop"]
