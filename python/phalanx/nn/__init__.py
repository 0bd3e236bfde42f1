"""Neural-network building blocks (phalanx.nn), PyTorch-shaped."""

import importlib

from . import functional, init, utils
from .modules import *  # noqa: F403 - the layer classes, listed in modules.__all__
from .modules import __all__ as _modules_all
from .parameter import Parameter

__all__ = ["functional", "init", "utils", "Parameter", *_modules_all]


def __getattr__(name: str):
    # nn.parallel pulls in phalanx.distributed; load it on first use, not with every import.
    if name == "parallel":
        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
