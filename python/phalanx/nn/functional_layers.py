"""torch.nn.functional's layer functions beyond those in functional.py, built on phalanx ops.

Each is a oneDNN primitive of its own or a composition of oneDNN-backed tensor ops
(convolution, batch normalisation, eltwise, binary, index_select, concatenation), so autograd
differentiates it and nothing loops over elements in Python; the index tables of pad and of
the interpolations oneDNN lacks are built with NumPy per shape.

- conv1d is conv2d on a height-1 view.
- conv_transpose2d is oneDNN's deconvolution (csrc/ops/conv_transpose.cc); only where oneDNN
  refuses the geometry (output_padding >= stride + padding) is it conv2d over the input with
  stride-1 zeros inserted between its elements, padded by dilation * (kernel - 1) - padding,
  with the kernel flipped and its in/out channels swapped (exact in value and gradient).
- layer_norm is oneDNN's layer_normalization (csrc/ops/layer_norm.cc), affine included.
- interpolate is oneDNN's resampling where that computes what PyTorch does (see
  _onednn_resampling: bilinear/linear with align_corners=False, nearest-exact, nearest at
  whole-number upscales); align_corners=True, other nearest ratios and area keep index tables
  (index_select and weighted sums) or adaptive average pooling.
- group_norm is oneDNN's batch_norm primitive (training statistics, no running ones) on a
  (1, rows, values) view, each row one normalised group, then the per-channel affine.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _C
from .._C import Tensor
from ._errors import TypeRuntimeError, ValueRuntimeError

__all__ = [
    "conv1d",
    "conv_transpose2d",
    "layer_norm",
    "group_norm",
    "embedding",
    "one_hot",
    "dropout1d",
    "dropout2d",
    "silu",
    "pad",
    "normalize",
    "interpolate",
    "upsample",
]

_nn = _C.nn


def _tuple(v, n: int, what: str, op: str) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"{op}: {what} must be an int or {n} ints, got {v!r}")
        return tuple(int(e) for e in v)
    return (int(v),) * n


def _index(values) -> Tensor:
    return _C._from_numpy(np.ascontiguousarray(values, dtype=np.int64))


def _check_tensor(op: str, name: str, t) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")


# ---- convolutions ------------------------------------------------------------------------------


def _same_pads(op: str, kernel, dilation, stride) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim that keeps the size at stride 1."""
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return pads


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """A 1-D convolution over (N, C, L) or (C, L): conv2d on the (N, C, 1, L) view."""
    op = "conv1d"
    _check_tensor(op, "input", input)
    _check_tensor(op, "weight", weight)
    if weight.dim() != 3:
        raise ValueRuntimeError(
            f"{op}: weight must be 3-D (out_channels, in_channels/groups, kernel), got shape "
            f"{list(weight.shape)}"
        )
    if input.dim() not in (2, 3):
        raise ValueRuntimeError(f"{op}: expected a 2-D or 3-D input, got shape {list(input.shape)}")
    unbatched = input.dim() == 2
    x = input.unsqueeze(0) if unbatched else input
    (s,), (d,) = _tuple(stride, 1, "stride", op), _tuple(dilation, 1, "dilation", op)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{op}: padding must be 'same', 'valid' or ints, got '{padding}'")
        p = 0
        if padding == "same":
            ((left, right),) = _same_pads(op, [weight.shape[2]], [d], [s])
            x = pad(x, (left, right)) if left != right else x
            p = left if left == right else 0
    else:
        (p,) = _tuple(padding, 1, "padding", op)
    y = _nn.conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, s), (0, p), (1, d), groups)
    y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def _insert_zeros(x: Tensor, dim: int, stride: int) -> Tensor:
    """stride - 1 zeros between neighbours along dim: size n becomes (n - 1) * stride + 1."""
    if stride == 1:
        return x
    n = x.shape[dim]
    parts = x.unsqueeze(dim + 1)
    shape = list(parts.shape)
    shape[dim + 1] = stride - 1
    zeros = _C.zeros(shape, dtype=x.dtype)
    spread = _C.cat([parts, zeros], dim + 1)
    shape = list(x.shape)
    shape[dim] = n * stride
    return spread.reshape(shape).narrow(dim, 0, (n - 1) * stride + 1)


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """The transposed (fractionally strided) 2-D convolution; weight is
    (in_channels, out_channels / groups, kH, kW) as in PyTorch."""
    op = "conv_transpose2d"
    _check_tensor(op, "input", input)
    _check_tensor(op, "weight", weight)
    if weight.dim() != 4:
        raise ValueRuntimeError(f"{op}: weight must be 4-D, got shape {list(weight.shape)}")
    if input.dim() not in (3, 4):
        raise ValueRuntimeError(f"{op}: expected a 3-D or 4-D input, got shape {list(input.shape)}")
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    s = _tuple(stride, 2, "stride", op)
    p = _tuple(padding, 2, "padding", op)
    op_ = _tuple(output_padding, 2, "output_padding", op)
    d = _tuple(dilation, 2, "dilation", op)
    if groups <= 0:
        raise ValueError(f"{op}: groups must be positive, got {groups}")
    c_in = weight.shape[0]
    if x.shape[1] != c_in or c_in % groups:
        raise ValueRuntimeError(
            f"{op}: input has {x.shape[1]} channels, weight of shape {list(weight.shape)} "
            f"expects {c_in} (divisible by groups={groups})"
        )
    if any(v < 1 for v in s + d) or any(v < 0 for v in p + op_):
        raise ValueError(
            f"{op}: stride and dilation must be >= 1 and padding, output_padding >= 0, got "
            f"stride={s}, dilation={d}, padding={p}, output_padding={op_}"
        )
    for i in range(2):
        if op_[i] >= s[i] and op_[i] >= d[i]:
            raise ValueError(
                f"{op}: output padding must be smaller than either stride or dilation, got "
                f"output_padding={op_}, stride={s}, dilation={d}"
            )
    if all(op_[i] < s[i] + p[i] for i in range(2)):
        y = _nn.conv_transpose2d(x, weight, bias, s, p, op_, groups, d)
    else:
        y = _conv_transpose2d_by_conv2d(x, weight, bias, s, p, op_, groups, d)
    return y.squeeze(0) if unbatched else y


def _conv_transpose2d_by_conv2d(x, weight, bias, s, p, op_, groups, d):
    """The one case oneDNN's deconvolution refuses (output_padding >= stride + padding, which
    only a dilation > stride allows): conv2d over zero-inserted, padded input."""
    c_in = weight.shape[0]
    k = weight.shape[2:]
    z = _insert_zeros(_insert_zeros(x, 2, s[0]), 3, s[1])
    edges = [d[i] * (k[i] - 1) - p[i] for i in range(2)]
    z = pad(z, (edges[1], edges[1] + op_[1], edges[0], edges[0] + op_[0]))
    # (C_in, C_out/g, kH, kW) -> (C_out, C_in/g, kH, kW), flipped in both spatial dims
    c_out_g = weight.shape[1]
    w = weight.reshape([groups, c_in // groups, c_out_g, k[0], k[1]]).transpose(1, 2)
    w = w.reshape([groups * c_out_g, c_in // groups, k[0], k[1]])
    w = w.index_select(2, _index(np.arange(k[0])[::-1])).index_select(
        3, _index(np.arange(k[1])[::-1])
    )
    return _nn.conv2d(z, w, bias, (1, 1), (0, 0), d, groups)


# ---- normalisation -----------------------------------------------------------------------------


def _normalize_rows(x: Tensor, rows: int, size: int, eps: float) -> Tensor:
    """Each of `rows` consecutive runs of `size` values scaled to mean 0, variance 1 (biased):
    oneDNN's batch-norm primitive on the (1, rows, size) view, each row one channel (oneDNN
    2.6 has no group_normalization). onednn_plain: the primitive even though the view is
    plain, not the direct loops plain NCHW activations get."""
    if size == 1:  # one value is its own mean: 0, as PyTorch gives (and a zero gradient)
        return x * 0.0
    flat = x.reshape([1, rows, size])
    y = _nn.batch_norm(flat, None, None, None, None, True, 0.0, eps, onednn_plain=True)
    return y.reshape(list(x.shape))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    op = "layer_norm"
    _check_tensor(op, "input", input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.dim() < k or tuple(input.shape[input.dim() - k :]) != shape:
        raise ValueRuntimeError(
            f"{op}: given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in shape)}], but got input of size {list(input.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueRuntimeError(
                f"{op}: {name} of shape {list(t.shape)} must have normalized_shape {list(shape)}"
            )
    return _nn.layer_norm(input, k, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    op = "group_norm"
    _check_tensor(op, "input", input)
    if input.dim() < 2:
        raise ValueRuntimeError(f"{op}: expected an (N, C, *) input, got shape {list(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueRuntimeError(
            f"{op}: num_channels={c} must be divisible by num_groups={num_groups} (> 0)"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueRuntimeError(f"{op}: {name} of shape {list(t.shape)} must be [{c}]")
    rows = n * num_groups
    y = (
        input * 1.0
        if input.numel() == 0
        else _normalize_rows(input, rows, input.numel() // rows, eps)
    )
    affine_shape = [1, c] + [1] * (input.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(affine_shape)
    if bias is not None:
        y = y + bias.reshape(affine_shape)
    return y


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p along dim, eps)."""
    if out is not None:
        raise ValueError("normalize: out= is not supported; use the returned tensor")
    _check_tensor("normalize", "input", input)
    p = float(p)
    if p <= 0:
        raise ValueError(f"normalize: p must be positive, got {p}")
    if math.isinf(p):
        norm = input.abs().max(dim, keepdim=True).values.clamp(min=eps)
    elif p == 2.0:
        # clamping the sum of squares (not the root) keeps sqrt's gradient finite at a zero
        # vector, where PyTorch's is 0 too
        norm = (input * input).sum(dim, keepdim=True).clamp(min=eps * eps).sqrt()
    elif p == 1.0:
        norm = input.abs().sum(dim, keepdim=True).clamp(min=eps)
    else:
        norm = input.abs().pow(p).sum(dim, keepdim=True).clamp(min=eps**p).pow(1.0 / p)
    return input / norm


# ---- embedding, one_hot ------------------------------------------------------------------------


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq=False,
    sparse=False,
):
    """Rows of weight picked by the integer indices in input: shape input.shape + [dim]."""
    op = "embedding"
    _check_tensor(op, "input", input)
    _check_tensor(op, "weight", weight)
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise ValueError(
            f"{op}: max_norm, scale_grad_by_freq and sparse are not supported, got "
            f"max_norm={max_norm}, scale_grad_by_freq={scale_grad_by_freq}, sparse={sparse}"
        )
    if input.dtype not in (_C.dtype.int64, _C.dtype.int32):
        raise TypeRuntimeError(f"{op}: indices must be int64 or int32, got {input.dtype!r}")
    if weight.dim() != 2:
        raise ValueRuntimeError(f"{op}: weight must be 2-D, got shape {list(weight.shape)}")
    num = weight.shape[0]
    flat = input.reshape([-1])
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= num):
        raise IndexError(
            f"{op}: index out of range in self: indices span [{int(flat.min())}, "
            f"{int(flat.max())}] but weight has {num} rows"
        )
    out = weight.index_select(0, flat)
    if padding_idx is not None:
        pad_row = padding_idx + num if padding_idx < 0 else padding_idx
        if not 0 <= pad_row < num:
            raise ValueError(f"{op}: padding_idx must be within num_embeddings, got {padding_idx}")
        # the padding row's value is returned but receives no gradient, as in PyTorch
        is_pad = (flat == pad_row).unsqueeze(1)
        out = _C.where(is_pad, out.detach(), out)
    return out.reshape([*input.shape, weight.shape[1]])


def one_hot(tensor, num_classes=-1):
    op = "one_hot"
    _check_tensor(op, "tensor", tensor)
    if tensor.dtype != _C.dtype.int64:
        raise TypeRuntimeError(
            f"{op} is only applicable to index tensor of type int64 (LongTensor), got "
            f"{tensor.dtype!r}"
        )
    if tensor.numel() == 0 and num_classes == -1:
        raise ValueRuntimeError(f"{op}: can not infer total number of classes from empty tensor")
    if tensor.numel():
        lo, hi = int(tensor.min()), int(tensor.max())
        if lo < 0:
            raise ValueRuntimeError(f"{op}: class values must be non-negative, got {lo}")
        if num_classes == -1:
            num_classes = hi + 1
        elif hi >= num_classes:
            raise ValueRuntimeError(
                f"{op}: class values must be smaller than num_classes={num_classes}, got {hi}"
            )
    classes = _C._arange(0, num_classes, 1, _C.dtype.int64, False)
    return (tensor.unsqueeze(-1) == classes).to(_C.dtype.int64)


# ---- dropout, silu -----------------------------------------------------------------------------


def _channel_dropout(op, input, p, training, inplace, mask_shape):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        scaled = input * 0.0
    else:
        mask = _C.empty(mask_shape)
        _C._bernoulli_(mask, 1.0 - p, None)
        scaled = input * (mask * (1.0 / (1.0 - p)))
    if inplace:
        input.copy_(scaled)
        return input
    return scaled


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zeroes whole channels of (N, C, L) or (C, L) with probability p, scaling the rest."""
    if input.dim() not in (2, 3):
        raise ValueError(f"dropout1d: expected a 2-D or 3-D input, got shape {list(input.shape)}")
    shape = list(input.shape[:-1]) + [1]
    return _channel_dropout("dropout1d", input, p, training, inplace, shape)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zeroes whole channels of (N, C, H, W) or (C, H, W) with probability p."""
    if input.dim() not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D or 4-D input, got shape {list(input.shape)}")
    if input.dim() == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), as in "
            "PyTorch. To get channel-wise 2D dropout of a (C, H, W) input, add a batch "
            "dimension.",
            UserWarning,
            stacklevel=2,
        )
        shape = list(input.shape[:2]) + [1]
    else:
        shape = list(input.shape[:2]) + [1, 1]
    return _channel_dropout("dropout2d", input, p, training, inplace, shape)


def silu(input, inplace=False):
    """x * sigmoid(x) on oneDNN's swish."""
    if inplace:
        _nn.activation_(_nn.Activation.silu, input, 1.0)
        return input
    return _nn.activation(_nn.Activation.silu, input, 1.0)


# ---- pad ---------------------------------------------------------------------------------------


def _pad_indices(n: int, before: int, after: int, mode: str) -> np.ndarray:
    i = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return np.mod(i, n)
    # reflect: mirror about the first and last elements (which are not repeated)
    period = 2 * (n - 1)
    i = np.mod(i, period) if period else np.zeros_like(i)
    return np.where(i >= n, period - i, i)


def pad(input, pad, mode="constant", value=None):
    """Pads the last len(pad) // 2 dims: pad = (last_before, last_after, prev_before, ...).
    Negative amounts crop (constant mode)."""
    op = "pad"
    _check_tensor(op, "input", input)
    pad = [int(v) for v in pad]
    if len(pad) % 2 or len(pad) // 2 > input.dim():
        raise ValueRuntimeError(
            f"{op}: padding length must be even and at most 2 * input.dim() = "
            f"{2 * input.dim()}, got {len(pad)} values"
        )
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(
            f"{op}: mode must be 'constant', 'reflect', 'replicate' or 'circular', got '{mode}'"
        )
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"{op}: padding mode '{mode}' doesn't take in value argument")
    out = input
    for j in range(len(pad) // 2):
        dim = input.dim() - 1 - j
        before, after = pad[2 * j], pad[2 * j + 1]
        n = out.shape[dim]
        if mode == "constant":
            out = _pad_constant(out, dim, before, after, 0.0 if value is None else value)
            continue
        if before < 0 or after < 0:
            raise ValueError(f"{op}: negative padding {pad} needs mode='constant'")
        if mode == "reflect" and (before >= n or after >= n):
            raise ValueRuntimeError(
                f"{op}: reflect padding ({before}, {after}) of dimension {dim} must be smaller "
                f"than its size {n}"
            )
        if (
            mode in ("replicate", "circular")
            and n == 0
            or mode == "circular"
            and (before > n or after > n)
        ):
            raise ValueRuntimeError(
                f"{op}: {mode} padding ({before}, {after}) of dimension {dim} needs at least "
                f"that many elements, got size {n}"
            )
        if before or after:
            out = out.index_select(dim, _index(_pad_indices(n, before, after, mode)))
    return out


def _pad_constant(x: Tensor, dim: int, before: int, after: int, value) -> Tensor:
    n = x.shape[dim]
    if before < 0 or after < 0:
        start, stop = max(-before, 0), n - max(-after, 0)
        if stop < start:
            raise ValueError(f"pad: cropping ({before}, {after}) leaves dimension {dim} empty")
        x = x.narrow(dim, start, stop - start)
        before, after = max(before, 0), max(after, 0)
    parts = []
    for amount in (before, after):
        shape = list(x.shape)
        shape[dim] = amount
        parts.append(_C.full(shape, value, dtype=x.dtype) if amount else None)
    pieces = [t for t in (parts[0], x, parts[1]) if t is not None]
    return _C.cat(pieces, dim) if len(pieces) > 1 else x


# ---- interpolate -------------------------------------------------------------------------------

_SPATIAL = {3: 1, 4: 2}
_MODES = {
    "nearest": (1, 2),
    "nearest-exact": (1, 2),
    "linear": (1,),
    "bilinear": (2,),
    "area": (1, 2),
}


def _output_sizes(op, x, size, scale_factor, spatial):
    in_sizes = list(x.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: either size or scale_factor should be defined (exactly one)")
    if size is not None:
        sizes = list(size) if isinstance(size, (tuple, list)) else [size] * spatial
        if len(sizes) != spatial:
            raise ValueError(
                f"{op}: size {size!r} must have {spatial} entries for an input of shape "
                f"{list(x.shape)}"
            )
        return [int(s) for s in sizes], [None] * spatial
    scales = (
        list(scale_factor) if isinstance(scale_factor, (tuple, list)) else [scale_factor] * spatial
    )
    if len(scales) != spatial:
        raise ValueError(
            f"{op}: scale_factor {scale_factor!r} must have {spatial} entries for an input of "
            f"shape {list(x.shape)}"
        )
    if any(s <= 0 for s in scales):
        raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor!r}")
    return [int(math.floor(n * float(s))) for n, s in zip(in_sizes, scales)], [
        float(s) for s in scales
    ]


def _scale(n_in, n_out, align_corners, scale):
    """PyTorch's area_pixel_compute_scale, in float32 as its CPU kernels compute it."""
    if align_corners:
        return np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0.0)
    if scale is not None and scale > 0:
        return np.float32(1.0 / scale)
    return np.float32(n_in / n_out)


def _nearest_along(x, dim, n_out, scale, exact):
    n_in = x.shape[dim]
    dst = np.arange(n_out, dtype=np.float32)
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(n_in / n_out)
    src = np.floor((dst + np.float32(0.5)) * s if exact else dst * s).astype(np.int64)
    return x.index_select(dim, _index(np.minimum(src, n_in - 1)))


def _linear_along(x, dim, n_out, align_corners, scale):
    n_in = x.shape[dim]
    s = _scale(n_in, n_out, align_corners, scale)
    dst = np.arange(n_out, dtype=np.float32)
    if align_corners:
        src = s * dst
    else:
        src = np.maximum(s * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
    i0 = src.astype(np.int64)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    w0 = (np.float32(1.0) - w1).astype(np.float32)
    shape = [n_out] + [1] * (x.dim() - 1 - dim)
    lo = x.index_select(dim, _index(i0)) * _C._from_numpy(w0.reshape(shape).copy())
    hi = x.index_select(dim, _index(i1)) * _C._from_numpy(w1.reshape(shape).copy())
    return lo + hi


def _onednn_resampling(mode, align_corners, in_sizes, sizes, scales):
    """oneDNN's resampling algorithm ('nearest' or 'linear') that computes exactly what
    PyTorch does for this call, or None (then index tables do it). oneDNN maps output index i
    to input coordinate (i + 0.5) * in / out - 0.5: linear interpolates there (PyTorch's
    align_corners=False), nearest rounds it, which is PyTorch's 'nearest-exact' and, only when
    out is a whole multiple of in, its 'nearest' (floor(i * in / out)). PyTorch takes the scale
    from scale_factor when given, so that must agree with in / out."""
    if any(n <= 0 for n in in_sizes):
        return None
    if mode in ("linear", "bilinear") and not align_corners:
        algorithm = "linear"
    elif mode == "nearest-exact" or (
        mode == "nearest" and all(o % n == 0 for n, o in zip(in_sizes, sizes))
    ):
        algorithm = "nearest"
    else:
        return None
    for n, o, scale in zip(in_sizes, sizes, scales):
        if scale is not None and np.float32(1.0 / scale) != np.float32(n / o):
            return None
    return algorithm


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias=False,
):
    """Resizes the spatial dims of (N, C, L) or (N, C, H, W) input: nearest, nearest-exact,
    linear, bilinear (align_corners as in PyTorch) or area."""
    op = "interpolate"
    _check_tensor(op, "input", input)
    if mode not in _MODES:
        raise ValueError(f"{op}: mode '{mode}' is not supported; phalanx has {', '.join(_MODES)}")
    spatial = _SPATIAL.get(input.dim())
    if spatial is None or spatial not in _MODES[mode]:
        raise ValueError(
            f"{op}: mode '{mode}' needs a "
            f"{' or '.join(f'{d + 2}-D' for d in _MODES[mode])} input, got shape "
            f"{list(input.shape)}"
        )
    linear = mode in ("linear", "bilinear")
    if align_corners is not None and not linear:
        raise ValueError(
            f"{op}: align_corners option can only be set with the interpolating modes: "
            "linear | bilinear"
        )
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported")
    sizes, scales = _output_sizes(op, input, size, scale_factor, spatial)
    if recompute_scale_factor:
        scales = [None] * spatial
    if any(s <= 0 for s in sizes):
        raise ValueError(f"{op}: output size {sizes} must be positive")
    if mode == "area":
        if spatial == 1:
            return _nn.adaptive_avg_pool2d(input.unsqueeze(2), (1, sizes[0])).squeeze(2)
        return _nn.adaptive_avg_pool2d(input, tuple(sizes))
    onednn_mode = _onednn_resampling(mode, align_corners, list(input.shape[2:]), sizes, scales)
    if onednn_mode is not None:
        return _nn.resample(input, sizes, onednn_mode)
    out = input
    for i in range(spatial):
        dim = 2 + i
        if linear:
            out = _linear_along(out, dim, sizes[i], bool(align_corners), scales[i])
        elif sizes[i] != input.shape[dim]:
            out = _nearest_along(out, dim, sizes[i], scales[i], mode == "nearest-exact")
    return out if out is not input else input * 1.0


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)
