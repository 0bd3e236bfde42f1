"""phalanx.autograd.Function: a differentiable operation written in Python, as in PyTorch.

The backward graph node is C++ (csrc/autograd/custom_function.h); this file keeps PyTorch's
bookkeeping: which forward arguments are tensors, what the ctx saved, and checking what
backward returns against the forward's arguments.
"""

from __future__ import annotations

from . import _C


class FunctionCtx:
    """The `ctx` that forward and backward share (attributes may be set on it freely)."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self._to_save: tuple = ()
        self._saved_is_none: list[bool] = []  # once the node holds them, where None was
        self._non_differentiable: list = []
        self._ref = None  # the node's reference once the graph is recorded

    def save_for_backward(self, *tensors) -> None:
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, _C.Tensor):
                raise TypeError(
                    "save_for_backward can only save tensors, but argument "
                    f"{i} is of type {type(t).__name__}"
                )
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self._ref is None:  # no graph was recorded: the tensors as they were given
            return tuple(self._to_save)
        kept = iter(self._ref.saved_tensors())
        return tuple(None if none else next(kept) for none in self._saved_is_none)

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable.extend(tensors)


def _is_tensor(x) -> bool:
    return isinstance(x, _C.Tensor)


def _backward_of(cls, ctx: FunctionCtx, args: tuple, name: str):
    """The callable the C++ node runs: gradients of the outputs in, one per tensor input out."""
    positions = [i for i, a in enumerate(args) if _is_tensor(a)]

    def run(grads, needs):
        result = cls.backward(ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        if len(result) < len(args) or any(g is not None for g in result[len(args) :]):
            raise RuntimeError(
                f"function {name} returned an incorrect number of gradients "
                f"(expected {len(args)}, got {len(result)})"
            )
        for i, g in enumerate(result[: len(args)]):
            if g is None:
                continue
            if not _is_tensor(g):
                raise TypeError(
                    f"function {name} returned a gradient of type {type(g).__name__} at "
                    f"position {i}: expected a tensor or None"
                )
            if not _is_tensor(args[i]):
                raise RuntimeError(
                    f"function {name} returned a gradient different than None at position "
                    f"{i}, but the corresponding forward input was not a tensor"
                )
        # An input that needs no gradient gets none, whatever backward computed for it.
        return [result[p] if need else None for p, need in zip(positions, needs)]

    return run


class Function:
    """Subclass with @staticmethod forward(ctx, *args) and backward(ctx, *grads); call apply.

    forward runs without recording history; its tensor outputs get one graph node whose
    backward is `backward`, called with one gradient per tensor output and returning one
    gradient (or None) per forward argument.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("autograd.Function subclasses must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("autograd.Function subclasses must define backward(ctx, ...)")

    @classmethod
    def apply(cls, *args):
        needs = tuple(_is_tensor(a) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        with _NoGrad():
            result = cls.forward(ctx, *args)
        is_tuple = isinstance(result, tuple)
        outputs = result if is_tuple else (result,)
        inputs = [a for a in args if _is_tensor(a)]
        if not (_C.is_grad_enabled() and any(needs)):
            return result
        name = cls.__name__ + "Backward"
        tensor_at = [i for i, o in enumerate(outputs) if _is_tensor(o)]
        tensors = [outputs[i] for i in tensor_at]
        differentiable = [not any(t is x for x in ctx._non_differentiable) for t in tensors]
        saved = [t for t in ctx._to_save if t is not None]
        recorded, ctx._ref = _C._record_custom_function(
            name, tensors, inputs, differentiable, saved, _backward_of(cls, ctx, args, name)
        )
        # The node holds the saved tensors now (and frees them after backward): the ctx must not.
        ctx._saved_is_none = [t is None for t in ctx._to_save]
        ctx._to_save, ctx._non_differentiable = (), []
        out = list(outputs)
        for i, t in zip(tensor_at, recorded):
            out[i] = t
        return tuple(out) if is_tuple else out[0]


class _NoGrad:
    """Grad mode off for the forward, restored on every exit."""

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(False)

    def __exit__(self, *exc) -> None:
        _C._set_grad_enabled(self._prev)
