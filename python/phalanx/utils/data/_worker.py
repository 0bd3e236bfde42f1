"""Per-thread state of the DataLoader's fetches: which worker thread runs them, and the
generator random transforms draw from while a batch is assembled.

Each batch gets its own generator, seeded from the loader's per-epoch base seed and the batch's
position in the epoch. Random augmentation is then a function of (seed, epoch, batch) only: the
same whether batches are built in the main thread or by any number of prefetch threads in any
order, and reproducible when a run resumes mid-epoch.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ... import _C

_local = threading.local()

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class WorkerInfo:
    """What get_worker_info() returns inside a prefetch thread (PyTorch's fields)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> WorkerInfo | None:
    """The calling prefetch thread's WorkerInfo; None in the main thread (num_workers=0)."""
    return getattr(_local, "worker_info", None)


def _set_worker_info(info: WorkerInfo | None) -> None:
    _local.worker_info = info


def batch_generator() -> _C.Generator | None:
    """The generator of the batch being assembled on this thread, or None outside a fetch."""
    return getattr(_local, "generator", None)


def mix_seed(base_seed: int, index: int) -> int:
    """A well-spread 63-bit seed for item `index` of the stream `base_seed` (splitmix64)."""
    z = (base_seed + 0x9E3779B97F4A7C15 * (index + 1)) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


@contextmanager
def batch_seed(seed: int):
    """Random transforms on this thread draw from Generator(seed) inside the block."""
    previous = getattr(_local, "generator", None)
    _local.generator = _C.Generator(seed)
    try:
        yield
    finally:
        _local.generator = previous
