"""Exceptions for argument errors PyTorch reports as RuntimeError.

Code written for PyTorch catches RuntimeError there, phalanx code catches ValueError or
TypeError (its convention for a bad argument): these are both, so either handler works.
"""


class ValueRuntimeError(ValueError, RuntimeError):
    """A bad argument value (PyTorch: RuntimeError)."""


class TypeRuntimeError(TypeError, RuntimeError):
    """A bad argument type or dtype (PyTorch: RuntimeError)."""
