"""The losses of torch.nn.functional beyond cross_entropy/nll_loss/mse_loss, over phalanx ops.

Where PyTorch's backward is not the derivative of its own clamped or stabilised forward
(binary cross entropy clamps log at -100 yet its gradient divides by max(x(1-x), 1e-12);
the logits form is exact where |x| and max(-x, 0) have kinks), the loss is built as

    value.detach() + (x - x.detach()) * dx

so the forward is PyTorch's value and the backward is exactly PyTorch's gradient formula dx,
with every operation still a phalanx (oneDNN) tensor op: no element loops in Python.
"""

from __future__ import annotations

from .. import _C
from .._C import Tensor
from ._errors import ValueRuntimeError

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
]


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check(op: str, input: Tensor, target: Tensor, reduction: str, extra=()) -> None:
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(
            f"{op}: input and target must be tensors, got {type(input).__name__} and "
            f"{type(target).__name__}"
        )
    if reduction not in ("none", "mean", "sum", *extra):
        allowed = ", ".join(repr(r) for r in ("none", "mean", "sum", *extra))
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"{op}: target shape {list(target.shape)} differs from input shape "
            f"{list(input.shape)}; give them the same shape"
        )
    if not input.dtype.is_floating_point or not target.dtype.is_floating_point:
        raise TypeError(
            f"{op}: input and target must be floating point, got {input.dtype!r} and "
            f"{target.dtype!r}"
        )


def _with_gradient(value: Tensor, pairs) -> Tensor:
    """`value` forward; backward d/dt = g for every (t, g) in pairs whose t needs a grad."""
    out = value.detach()
    for t, g in pairs:
        if t is not None and t.requires_grad:
            out = out + (t - t.detach()) * g.detach()
    return out


def _log1p(u: Tensor) -> Tensor:
    """log(1 + u) accurate for tiny u (Kahan's trick), value only (no gradient needed)."""
    w = u + 1.0
    return _C.where(w == 1.0, u, _C.log(w) * u / (w - 1.0))


def _softplus_neg(x: Tensor) -> Tensor:
    """log(1 + exp(-x)) without overflow: log1p(exp(-|x|)) + max(-x, 0)."""
    return _log1p(_C.exp(-x.abs())) + (-x).clamp(min=0.0)


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
):
    """-w * (t * log(x) + (1 - t) * log(1 - x)), each log clamped at -100, as PyTorch."""
    reduction = _legacy(size_average, reduce, reduction)
    _check("binary_cross_entropy", input, target, reduction)
    if input.numel() and (float(input.min()) < 0.0 or float(input.max()) > 1.0):
        raise ValueRuntimeError(
            "binary_cross_entropy: all elements of input should be between 0 and 1, got "
            f"values in [{float(input.min())}, {float(input.max())}]; for logits use "
            "binary_cross_entropy_with_logits"
        )
    x, t = input.detach(), target.detach()
    w = 1.0 if weight is None else weight.detach()
    log_x = _C.log(x).clamp(min=-100.0)
    log_1mx = _C.log(1.0 - x).clamp(min=-100.0)
    value = -(t * log_x + (1.0 - t) * log_1mx) * w
    dx = (x - t) / (x * (1.0 - x)).clamp(min=1e-12) * w  # PyTorch's binary_cross_entropy_backward
    dt = (log_1mx - log_x) * w
    return _reduce(_with_gradient(value, [(input, dx), (target, dt)]), reduction)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction="mean",
    pos_weight=None,
):
    """w * ((1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x))), computed stably."""
    reduction = _legacy(size_average, reduce, reduction)
    _check("binary_cross_entropy_with_logits", input, target, reduction)
    x, t = input.detach(), target.detach()
    w = 1.0 if weight is None else weight.detach()
    sp = _softplus_neg(x)
    sig = _C.nn.activation(_C.nn.Activation.sigmoid, x)
    if pos_weight is None:
        value = ((1.0 - t) * x + sp) * w
        dx = (sig - t) * w
        dt = -x * w
    else:
        pw = pos_weight.detach()
        log_weight = (pw - 1.0) * t + 1.0
        value = ((1.0 - t) * x + log_weight * sp) * w
        dx = ((pw * t + 1.0 - t) * sig - pw * t) * w
        dt = ((pw - 1.0) * sp - x) * w
    return _reduce(_with_gradient(value, [(input, dx), (target, dt)]), reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    _check("l1_loss", input, target, reduction)
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 * d**2 / beta where |d| < beta, else |d| - 0.5 * beta (beta = 0: the L1 loss)."""
    reduction = _legacy(size_average, reduce, reduction)
    _check("smooth_l1_loss", input, target, reduction)
    if beta < 0:
        raise ValueRuntimeError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d = (input - target).abs()
    if beta == 0.0:
        return _reduce(d, reduction)
    return _reduce(_C.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 * d**2 where |d| < delta, else delta * (|d| - 0.5 * delta)."""
    _check("huber_loss", input, target, reduction)
    if delta <= 0:
        raise ValueRuntimeError(f"huber_loss: delta must be > 0, got {delta}")
    d = (input - target).abs()
    loss = _C.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target * (log(target) - input) pointwise (0 where target is 0); input holds
    log-probabilities, target probabilities (log-probabilities with log_target=True).
    reduction="batchmean" divides the sum by the batch size: the mathematical KL divergence."""
    reduction = _legacy(size_average, reduce, reduction)
    _check("kl_div", input, target, reduction, extra=("batchmean",))
    if log_target:
        loss = _C.exp(target) * (target - input)
    else:
        # xlogy(t, t): 0 where t == 0 (a NaN for t < 0, as PyTorch); the inner where keeps
        # log's gradient finite where the outer one drops it.
        zero = target == 0.0
        t_log_t = _C.where(zero, 0.0, target * _C.log(_C.where(zero, 1.0, target)))
        loss = t_log_t - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.dim() else 1)
    return _reduce(loss, reduction)


def _legacy(size_average, reduce, reduction: str) -> str:
    """Maps the pre-1.0 size_average/reduce flags to a reduction, as torch.nn._reduction."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"
