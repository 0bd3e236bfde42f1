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
    """``with no_grad():``, ``@no_grad()`` and bare ``@no_grad`` (as PyTorch allows)."""

    def __new__(cls, fn=None):
        if fn is not None and callable(fn):
            return cls()(fn)
        return super().__new__(cls)

    def __init__(self, fn=None) -> None:
        super().__init__(False)


class inference_mode(_GradMode):
    """PyTorch's inference_mode: here the same as no_grad (``mode=False`` records history)."""

    def __new__(cls, mode=True):
        if callable(mode):
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True) -> None:
        super().__init__(not mode if isinstance(mode, bool) else False)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(self._enabled is False):
                return fn(*args, **kwargs)

        return wrapper


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


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=None,
    is_grads_batched=False,
    materialize_grads=False,
):
    """The gradients of `outputs` with respect to `inputs`, as torch.autograd.grad: returned,
    never accumulated into any tensor's .grad. Higher-order gradients (create_graph=True) and
    batched gradients are not supported."""
    if create_graph:
        raise ValueError(
            "autograd.grad: create_graph=True (higher-order gradients) is not supported"
        )
    if is_grads_batched:
        raise ValueError("autograd.grad: is_grads_batched=True is not supported")
    outputs = [outputs] if isinstance(outputs, _C.Tensor) else list(outputs)
    single = isinstance(inputs, _C.Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, _C.Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"autograd.grad: got {len(outputs)} outputs but {len(grad_outputs)} grad_outputs"
        )
    grads = _C._grad(outputs, list(grad_outputs), inputs, bool(retain_graph))
    for i, (g, x) in enumerate(zip(grads, inputs)):
        if g is None and materialize_grads:
            grads[i] = _C.zeros(*x.shape)
        elif g is None and not allow_unused:
            raise RuntimeError(
                f"autograd.grad: input {i} was not used in the graph of the outputs; pass "
                "allow_unused=True to get None for it"
            )
    return tuple(grads)
