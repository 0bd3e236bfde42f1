"""Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).

The norms are computed with phalanx's own reductions, one per gradient, then combined the way
PyTorch does (the norm of the per-gradient norms), so the clip coefficient agrees to rounding.
"""

from __future__ import annotations

import math

from ... import _C
from ..._C import Tensor
from ...autograd import no_grad


def _as_list(tensors) -> list[Tensor]:
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def _grads(parameters) -> list[Tensor]:
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _norm_type(norm_type) -> float:
    try:
        value = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"norm_type must be a number or 'inf', got {norm_type!r}") from None
    if math.isnan(value) or value <= 0:
        raise ValueError(f"norm_type must be positive (or inf), got {norm_type!r}")
    return value


def _vector_norm(t: Tensor, p: float) -> Tensor:
    t = t.float() if t.dtype != _C.dtype.float32 else t
    if math.isinf(p):
        return t.abs().max() if t.numel() else _C.zeros([])
    if p == 1.0:
        return t.abs().sum()
    if p == 2.0:
        return (t * t).sum().sqrt()
    return t.abs().pow(p).sum().pow(1.0 / p)


@no_grad()
def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None) -> Tensor:
    """The norm of all `tensors` together: the `norm_type`-norm of their individual norms."""
    p = _norm_type(norm_type)
    tensors = _as_list(tensors)
    if not tensors:
        return _C.zeros([])
    norms = _C.stack([_vector_norm(t, p) for t in tensors])
    total = _vector_norm(norms, p)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite "
            f"({float(total)}), so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


@no_grad()
def clip_grad_norm_(
    parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None
) -> Tensor:
    """Scales all gradients in place so that their joint norm is at most `max_norm`.

    Returns the joint norm before clipping (a 0-d tensor). As in PyTorch the scale is
    ``min(1, max_norm / (norm + 1e-6))``, applied even when it is 1 (so NaN norms spread).
    """
    max_norm = float(max_norm)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef if g.dtype == coef.dtype else coef.to(g.dtype))
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None) -> None:
    """Clamps every gradient element in place into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
