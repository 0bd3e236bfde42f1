"""Neural-network building blocks (phalanx.nn), PyTorch-shaped."""

from . import functional, init, parallel
from .modules import *  # noqa: F403 - the layer classes, listed in modules.__all__
from .modules import __all__ as _modules_all
from .parameter import Parameter

__all__ = ["functional", "init", "parallel", "Parameter", *_modules_all]
