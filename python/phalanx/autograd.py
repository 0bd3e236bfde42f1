"""Gradient-mode switches and the functional backward entry point, as in torch.autograd."""

from __future__ import annotations

import functools

from . import _C
from ._autograd_function import Function, FunctionCtx  # noqa: F401  (phalanx.autograd.Function)


class _GradMode:
    """Context manager and decorator that sets whether operations record history."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._prev: list[bool] = []

    def __enter__(self):
        self._prev.append(_C.is_grad_enabled())
        _C._set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc) -> None:
        _C._set_grad_enabled(self._prev.pop())

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_GradMode):
    def __init__(self) -> None:
        super().__init__(True)


class set_grad_enabled(_GradMode):
    """Sets the mode at once (so it also works as a plain call) and restores it on exit."""

    def __init__(self, mode: bool) -> None:
        super().__init__(bool(mode))
        self._before = _C.is_grad_enabled()
        _C._set_grad_enabled(bool(mode))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _C._set_grad_enabled(self._before)


def backward(tensors, grad_tensors=None, retain_graph=None) -> None:
    """Accumulates gradients of `tensors` into the leaves, like torch.autograd.backward."""
    if isinstance(tensors, _C.Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, _C.Tensor):
        grad_tensors = [grad_tensors]
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"backward: got {len(tensors)} tensors but {len(grad_tensors)} gradients")
    _C._backward(tensors, list(grad_tensors), bool(retain_graph))
