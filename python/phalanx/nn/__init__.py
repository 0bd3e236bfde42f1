"""Neural-network building blocks (phalanx.nn), PyTorch-shaped."""

from . import functional

__all__ = ["functional"]
