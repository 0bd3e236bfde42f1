"""phalanx.nn.functional: the signatures of torch.nn.functional over phalanx's C++ ops."""

from __future__ import annotations

from .. import _C
from .._C import Tensor

_nn = _C.nn
_Act = _nn.Activation

__all__ = [
    "conv2d",
    "linear",
    "batch_norm",
    "relu",
    "relu6",
    "leaky_relu",
    "gelu",
    "sigmoid",
    "tanh",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "dropout",
]


def _batched(input: Tensor, op: str, dims: int = 4) -> tuple[Tensor, bool]:
    """Accepts an unbatched (C, H, W) input as PyTorch does, by adding a batch of one."""
    if input.dim() == dims - 1:
        return input.unsqueeze(0), True
    if input.dim() != dims:
        raise ValueError(
            f"{op}: expected a {dims - 1}-D or {dims}-D input, got shape {list(input.shape)}"
        )
    return input, False


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv2d(_nn.conv2d, input, weight, bias, stride, padding, dilation, groups)


def _conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """relu(conv2d(...)) in one oneDNN pass, exact against the two (nn.Conv2d's fusion)."""
    return _conv2d(_nn.conv2d_relu, input, weight, bias, stride, padding, dilation, groups)


def _conv2d(op, input, weight, bias, stride, padding, dilation, groups):
    if isinstance(padding, str):
        raise ValueError(f"conv2d: string padding '{padding}' is not supported; give ints")
    x, unbatched = _batched(input, "conv2d")
    y = op(x, weight, bias, stride, padding, dilation, groups)
    return y.squeeze(0) if unbatched else y


def linear(input, weight, bias=None):
    return _nn.linear(input, weight, bias)


def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):
    return _nn.batch_norm(
        input,
        running_mean,
        running_var,
        weight,
        bias,
        training,
        0.0 if momentum is None else momentum,
        eps,
    )


def relu(input, inplace=False):
    return _activation(_Act.relu, input, 0.0, inplace)


def relu6(input, inplace=False):
    return _activation(_Act.relu6, input, 0.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _activation(_Act.leaky_relu, input, negative_slope, inplace)


def _activation(kind, input, alpha, inplace):
    if not inplace:
        return _nn.activation(kind, input, alpha)
    # The result overwrites input's own memory: no second copy is kept for backward.
    _nn.activation_(kind, input, alpha)
    return input


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got '{approximate}'")
    return _nn.activation(_Act.gelu if approximate == "none" else _Act.gelu_tanh, input)


def sigmoid(input):
    return _nn.activation(_Act.sigmoid, input)


def tanh(input):
    return _nn.activation(_Act.tanh, input)


def _inplace(input, result, inplace):
    if not inplace:
        return result
    input.copy_(result)
    return input


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    if return_indices:
        raise ValueError("max_pool2d: return_indices=True is not supported")
    x, unbatched = _batched(input, "max_pool2d")
    if stride is not None and not isinstance(stride, int) and len(stride) == 0:
        stride = None
    y = _nn.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    return y.squeeze(0) if unbatched else y


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    if divisor_override is not None:
        raise ValueError("avg_pool2d: divisor_override is not supported")
    x, unbatched = _batched(input, "avg_pool2d")
    if stride is not None and not isinstance(stride, int) and len(stride) == 0:
        stride = None
    y = _nn.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool2d(input, output_size):
    x, unbatched = _batched(input, "adaptive_avg_pool2d")
    if not isinstance(output_size, int):
        output_size = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(output_size))
    y = _nn.adaptive_avg_pool2d(x, output_size)
    return y.squeeze(0) if unbatched else y


def _softmax_dim(input, dim):
    if dim is None:  # PyTorch's legacy implicit choice
        return 0 if input.dim() in (0, 1, 3) else 1
    return dim


def softmax(input, dim=None, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return _nn.softmax(x, _softmax_dim(x, dim), False)


def log_softmax(input, dim=None, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return _nn.softmax(x, _softmax_dim(x, dim), True)


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got '{reduction}'")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    _check_reduction(reduction)
    return _nn.nll_loss(input, target, weight, reduction, ignore_index)


def cross_entropy(
    input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    """log_softmax + nll_loss, with PyTorch's label smoothing (a uniform share of the loss)."""
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    class_dim = 0 if input.dim() == 1 else 1
    if target.dtype.is_floating_point:
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    logp = log_softmax(input, class_dim)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return nll
    n_classes = input.shape[class_dim]
    if weight is not None:
        shape = [1] * input.dim()
        shape[class_dim] = n_classes
        smooth = -(logp * weight.reshape(shape)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    ignored = target == ignore_index
    smooth = _C.where(ignored, 0.0, smooth)
    if reduction == "mean":
        if weight is not None:
            kept = _C.where(ignored, 0, target).reshape(-1)
            w_target = _C.where(ignored.reshape(-1), 0.0, weight.index_select(0, kept))
            smooth = smooth.sum() / w_target.sum()
        else:  # the mean over the targets that count, as PyTorch takes it
            smooth = smooth.sum() / (~ignored).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    """-sum_c w_c * q_c * log_softmax(input)_c with q the (smoothed) class probabilities;
    "mean" divides by the number of samples, as PyTorch does for probability targets."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"cross_entropy: class-probability target shape {list(target.shape)} must equal "
            f"input shape {list(input.shape)} (class indices must be int64)"
        )
    class_dim = 0 if input.dim() == 1 else 1
    n_classes = input.shape[class_dim]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    terms = log_softmax(input, class_dim) * target
    if weight is not None:
        shape = [1] * input.dim()
        shape[class_dim] = n_classes
        terms = terms * weight.reshape(shape)
    loss = -terms.sum(class_dim)
    if reduction == "mean":
        return loss.sum() / (input.numel() // n_classes if n_classes else 0)
    if reduction == "sum":
        return loss.sum()
    return loss


def mse_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss: input shape {list(input.shape)} and target shape "
            f"{list(target.shape)} differ"
        )
    sq = (input - target) ** 2
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    return sq


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zeroes each element with probability p and scales the rest by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _inplace(input, input * 0.0, inplace)
    mask = _C.empty(input.shape)
    _C._bernoulli_(mask, 1.0 - p, generator)
    return _inplace(input, input * (mask * (1.0 / (1.0 - p))), inplace)


# The other losses live in their own file; imported last (they use the helpers above).
from .functional_losses import *  # noqa: E402,F403
from .functional_losses import __all__ as _losses_all  # noqa: E402

__all__ += _losses_all
from .functional_layers import *  # noqa: E402,F403
from .functional_layers import __all__ as _layers_all  # noqa: E402

__all__ += _layers_all
from .functional_extra import *  # noqa: E402,F403
from .functional_extra import __all__ as _extra_all  # noqa: E402

__all__ += _extra_all
