"""Parameter: a tensor that a Module registers as a learnable weight when assigned to it."""

from __future__ import annotations

from .. import _C


class Parameter(_C.Tensor):
    """A leaf tensor that requires grad by default and marks itself as a module's weight.

    It shares `data`'s storage (as torch.nn.Parameter does) but not its autograd history:
    the wrapped tensor is detached, so a Parameter is always a leaf.
    """

    def __init__(self, data: _C.Tensor | None = None, requires_grad: bool = True) -> None:
        if data is None:
            data = _C.empty([0])
        if not isinstance(data, _C.Tensor):
            raise TypeError(f"Parameter: data must be a phalanx.Tensor, got {type(data).__name__}")
        super().__init__(data.detach())
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__
