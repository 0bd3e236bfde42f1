"""Data parallelism across processes and hosts (phalanx.nn.parallel)."""

from ._reducer import GradBucket
from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel", "GradBucket"]
