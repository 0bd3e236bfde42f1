"""Parameters as one flat vector and back (torch.nn.utils.parameters_to_vector)."""

from __future__ import annotations

from ... import _C
from ..._C import Tensor
from ...autograd import no_grad


def parameters_to_vector(parameters) -> Tensor:
    """One 1-D tensor holding every parameter's elements, in order (differentiable)."""
    flat = [p.reshape([-1]) for p in parameters]
    if not flat:
        raise ValueError("parameters_to_vector: got no parameters")
    return _C.cat(flat, 0)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copies consecutive slices of the 1-D `vec` into the parameters, in order."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got: {type(vec).__name__}")
    if vec.dim() != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, got shape {list(vec.shape)}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if total != vec.numel():
        raise ValueError(
            f"vector_to_parameters: vec has {vec.numel()} elements but the parameters hold {total}"
        )
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec.narrow(0, offset, n).reshape(list(p.shape)))
            offset += n
