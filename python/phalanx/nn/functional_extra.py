"""More of torch.nn.functional over phalanx ops: 1-D pooling (2-D pooling on a height-1
view, so oneDNN pools it) and activations composed of oneDNN eltwise/binary ops, each
written so that autograd gives PyTorch's gradient everywhere (no inf * 0 in a branch that
torch.where discards)."""

from __future__ import annotations

from .. import _C

__all__ = [
    "max_pool1d",
    "avg_pool1d",
    "adaptive_avg_pool1d",
    "elu",
    "softplus",
    "hardswish",
    "hardsigmoid",
    "mish",
    "prelu",
    "cosine_similarity",
]

_nn = _C.nn


def _one(v, name, op):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{op}: {name} must be an int or one int, got {v!r}")
        return int(v[0])
    return int(v)


def _pool1d_input(input, op):
    if input.dim() not in (2, 3):
        raise ValueError(f"{op}: expected a 2-D or 3-D input, got shape {list(input.shape)}")
    unbatched = input.dim() == 2
    x = input.unsqueeze(0) if unbatched else input
    return x.unsqueeze(2), unbatched


def _pool1d_output(y, unbatched):
    y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def max_pool1d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    op = "max_pool1d"
    if return_indices:
        raise ValueError(f"{op}: return_indices=True is not supported")
    k = _one(kernel_size, "kernel_size", op)
    s = k if stride is None or stride == [] else _one(stride, "stride", op)
    x, unbatched = _pool1d_input(input, op)
    y = _nn.max_pool2d(
        x,
        (1, k),
        (1, s),
        (0, _one(padding, "padding", op)),
        (1, _one(dilation, "dilation", op)),
        ceil_mode,
    )
    return _pool1d_output(y, unbatched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    op = "avg_pool1d"
    k = _one(kernel_size, "kernel_size", op)
    s = k if stride is None or stride == [] else _one(stride, "stride", op)
    x, unbatched = _pool1d_input(input, op)
    y = _nn.avg_pool2d(
        x, (1, k), (1, s), (0, _one(padding, "padding", op)), ceil_mode, count_include_pad
    )
    return _pool1d_output(y, unbatched)


def adaptive_avg_pool1d(input, output_size):
    x, unbatched = _pool1d_input(input, "adaptive_avg_pool1d")
    y = _nn.adaptive_avg_pool2d(x, (1, _one(output_size, "output_size", "adaptive_avg_pool1d")))
    return _pool1d_output(y, unbatched)


def _inplace(input, result, inplace):
    if not inplace:
        return result
    input.copy_(result)
    return input


def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    negative = (_C.exp(input.clamp(max=0.0)) - 1.0) * alpha
    return _inplace(input, _C.where(input > 0.0, input, negative), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    scaled = input * beta
    soft = _C.log(_C.exp(scaled.clamp(max=threshold)) + 1.0) * (1.0 / beta)
    return _C.where(scaled > threshold, input, soft)


def hardsigmoid(input, inplace=False):
    """clamp(x / 6 + 1 / 2, 0, 1)."""
    return _inplace(input, (input * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0), inplace)


def hardswish(input, inplace=False):
    """x * clamp(x + 3, 0, 6) / 6."""
    return _inplace(input, input * (input + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0), inplace)


def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    return _inplace(input, input * _nn.activation(_nn.Activation.tanh, softplus(input)), inplace)


def prelu(input, weight):
    """x where x >= 0, else weight * x; weight has 1 or C (dim 1) entries."""
    if weight.numel() != 1:
        if input.dim() < 2 or input.shape[1] != weight.numel():
            raise ValueError(
                f"prelu: weight has {weight.numel()} entries but input of shape "
                f"{list(input.shape)} has {input.shape[1] if input.dim() > 1 else 1} channels"
            )
        weight = weight.reshape([1, weight.numel()] + [1] * (input.dim() - 2))
    else:
        weight = weight.reshape([])
    return _C.where(input >= 0.0, input, input * weight)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along dim."""
    n1 = (x1 * x1).sum(dim).clamp(min=eps * eps).sqrt()
    n2 = (x2 * x2).sum(dim).clamp(min=eps * eps).sqrt()
    return (x1 * x2).sum(dim) / (n1 * n2)
