"""An exception raised in a prefetch thread, re-raised in the consumer's thread with where it
happened: PyTorch's ExceptionWrapper, for threads instead of worker processes.

The consumer sees the original exception type (so `except ValueError` still works) with a
message naming the worker thread and the sample, followed by the original traceback, whose
frames ran on a thread the consumer's traceback never shows.
"""

from __future__ import annotations

import traceback


class _KeyErrorMessage(str):
    """KeyError's str() is the repr of its argument; this keeps the message readable."""

    def __repr__(self) -> str:
        return self


def in_worker(exc: BaseException, worker_id: int, doing: str) -> BaseException:
    """The exception to raise for `exc`, caught in worker thread `worker_id` while `doing`
    (e.g. "loading sample index 7")."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    msg = (
        f"Caught {type(exc).__name__} in DataLoader worker thread {worker_id} while {doing}.\n"
        f"Original {tb}"
    )
    if isinstance(exc, KeyError):
        msg = _KeyErrorMessage(msg)
    try:
        return type(exc)(msg)
    except Exception:  # noqa: BLE001 - a type whose constructor wants other arguments
        return RuntimeError(msg)
