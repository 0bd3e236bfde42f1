"""Everyday Tensor methods PyTorch scripts use, composed from phalanx's C++ ops.

Each method here is a few C++ ops (views, reductions, elementwise math, matmul), so forward
and backward run in C++ and gradients come from the ops' own backward functions; none loops
over elements in Python.
"""

from __future__ import annotations

import numpy as np

from . import _C
from ._device import CPU, _kind, check_device, device

T = _C.Tensor
_c_to_dtype = T.to
_c_getitem = T.__getitem__
_c_setitem = T.__setitem__

_LEGACY_TYPE_NAMES = {
    "float32": "torch.FloatTensor",
    "float64": "torch.DoubleTensor",
    "float16": "torch.HalfTensor",
    "bfloat16": "torch.BFloat16Tensor",
    "int64": "torch.LongTensor",
    "int32": "torch.IntTensor",
    "uint8": "torch.ByteTensor",
    "bool": "torch.BoolTensor",
}


# ---- devices and conversions ----


def _parse_to(args, kwargs):
    """PyTorch's Tensor.to overloads -> (dtype or None, whether a copy was asked for)."""
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)  # copies here are synchronous: nothing to wait for
    copy = bool(kwargs.pop("copy", False))
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
    rest = list(args)
    if rest and isinstance(rest[0], T):  # to(other): other's dtype and device
        other = rest.pop(0)
        dtype = other.dtype
    elif rest and isinstance(rest[0], (str, device)):
        dev = rest.pop(0)
    if rest and isinstance(rest[0], _C.dtype):
        dtype = rest.pop(0)
    if rest and isinstance(rest[0], bool):  # to(dtype, non_blocking, copy)
        rest.pop(0)
        if rest and isinstance(rest[0], bool):
            copy = rest.pop(0)
    if rest:
        got = ", ".join(_kind(a) for a in args)
        raise TypeError(
            f"to() received an invalid combination of arguments: got ({got}); expected a "
            "device, a dtype, a tensor, or device and dtype"
        )
    if dtype is not None and not isinstance(dtype, _C.dtype):
        raise TypeError(f"to(): dtype must be a phalanx dtype, got {_kind(dtype)}")
    check_device(dev, "to()")
    return dtype, copy


def _to(self, *args, **kwargs):
    dtype, copy = _parse_to(args, dict(kwargs))
    out = self if dtype is None else _c_to_dtype(self, dtype)
    return out.clone() if copy and out is self else out


def _cpu(self, memory_format=None):
    return self


def _cuda(self, device=None, non_blocking=False, memory_format=None):
    check_device("cuda" if device is None else device, "cuda()")
    raise AssertionError("unreachable")  # pragma: no cover


def _type(self, dtype=None, non_blocking=False, **kwargs):
    if dtype is None:
        return _LEGACY_TYPE_NAMES[self.dtype.name]
    if isinstance(dtype, str):
        names = {v: k for k, v in _LEGACY_TYPE_NAMES.items()}
        if dtype not in names:
            raise ValueError(f"type(): invalid type string {dtype!r}")
        dtype = getattr(_C.dtype, names[dtype])
    return _c_to_dtype(self, dtype)


# ---- views and shapes ----


def _view_as(self, other):
    return self.view(tuple(other.shape))


def _reshape_as(self, other):
    return self.reshape(tuple(other.shape))


def _expand_as(self, other):
    return self.expand(tuple(other.shape))


def _split(self, split_size_or_sections, dim=0):
    dim = dim + self.dim() if dim < 0 else dim
    n = self.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0 and n > 0:
            raise RuntimeError(
                f"split(): split_size must be positive, got {split_size_or_sections}"
            )
        step = split_size_or_sections
        sizes = [min(step, n - s) for s in range(0, n, step)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                f"size at dimension {dim}), but got split_sizes={sizes}"
            )
    out, start = [], 0
    for s in sizes:
        out.append(self.narrow(dim, start, s))
        start += s
    return tuple(out)


def _chunk(self, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = self.shape[dim]
    return _split(self, max(1, -(-n // chunks)), dim)


def _repeat(self, *sizes):
    if len(sizes) == 1 and not isinstance(sizes[0], int):
        sizes = tuple(sizes[0])
    if len(sizes) < self.dim():
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor"
        )
    x = self.reshape((1,) * (len(sizes) - self.dim()) + tuple(self.shape))
    # (d0, d1) repeated (r0, r1): view as (1, d0, 1, d1), expand to (r0, d0, r1, d1), flatten pairs
    inter, expanded, final = [], [], []
    for r, d in zip(sizes, x.shape):
        inter += [1, d]
        expanded += [r, d]
        final.append(r * d)
    return x.reshape(inter).expand(expanded).reshape(final)


# ---- math ----


def _masked_fill(self, mask, value):
    if not isinstance(mask, T) or mask.dtype != _C.dtype.bool:
        raise RuntimeError(
            f"masked_fill only supports boolean masks, but got mask of {_describe(mask)}"
        )
    if isinstance(value, T):
        value = value.to(self.dtype)
    out = _C.where(mask, value, self)
    return out if out.dtype == self.dtype else _c_to_dtype(out, self.dtype)


def _masked_fill_(self, mask, value):
    self.copy_(_masked_fill(self, mask, value))
    return self


def _describe(x) -> str:
    return f"dtype {x.dtype}" if isinstance(x, T) else f"type {_kind(x)}"


def _dims(dim):
    if dim is None:
        return None
    return (dim,) if isinstance(dim, int) else tuple(dim)


def _count(self, dim) -> int:
    if dim is None:
        return self.numel()
    n = 1
    for d in _dims(dim):
        n *= self.shape[d]
    return n


def _var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if not self.dtype.is_floating_point:
        raise RuntimeError(f"var(): expected a floating point tensor, got {self.dtype}")
    if isinstance(dim, bool):  # var(unbiased) positional form
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    mean = self.mean(dim=_dims(dim), keepdim=True)
    dev = self - mean
    total = (dev * dev).sum(dim=_dims(dim), keepdim=keepdim)
    return total / max(_count(self, dim) - correction, 0)


def _std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _var(self, dim, unbiased, keepdim, correction=correction).sqrt()


def _any(self, dim=None, keepdim=False):
    nonzero = _c_to_dtype(self != 0, _C.dtype.int64)
    return (nonzero.sum(dim=dim, keepdim=keepdim) if dim is not None else nonzero.sum()) > 0


def _all(self, dim=None, keepdim=False):
    zero = _c_to_dtype(self == 0, _C.dtype.int64)
    return (zero.sum(dim=dim, keepdim=keepdim) if dim is not None else zero.sum()) == 0


def _amax(self, dim=(), keepdim=False):
    return _amax_amin(self, dim, keepdim, True)


def _amin(self, dim=(), keepdim=False):
    return _amax_amin(self, dim, keepdim, False)


def _amax_amin(self, dim, keepdim, is_max):
    """PyTorch's amax/amin: every element equal to the extreme shares its gradient evenly."""
    dims = _dims(dim) or tuple(range(self.dim()))
    dims = sorted(d % max(self.dim(), 1) for d in dims)
    with _no_grad():
        x = self.detach()
        for d in reversed(dims):
            x = (x.max(d, keepdim=True) if is_max else x.min(d, keepdim=True))[0]
        hit = _c_to_dtype(self.detach() == x, self.dtype) if self.dtype.is_floating_point else None
    if hit is None or not (self.requires_grad and _C.is_grad_enabled()):
        return x if keepdim else _squeeze_dims(x, dims)
    dims = tuple(dims)
    count = hit.sum(dim=dims, keepdim=True)
    # PyTorch's gradient is hit / count (NaN where the extreme is NaN: nothing equals it and
    # count is 0). A finite extreme is x plus a term that is zero but carries that gradient,
    # so the value stays exactly x; an infinite or NaN one is sum(hit * self) / count (inf - inf
    # would be NaN).
    finite = self.detach().abs() != float("inf")
    hit_mask = self.detach() == x
    zero = _C.where(hit_mask & finite, self - self.detach(), 0.0).sum(dim=dims, keepdim=True)
    special = _C.where(hit_mask & ~finite, self, 0.0).sum(dim=dims, keepdim=True)
    # where the extreme is NaN, every element's gradient is 0 / 0 (NaN), as in PyTorch
    nan_rows = _C.where(x != x, self - self.detach(), 0.0) * 0.0 / count
    special = special / count + nan_rows.sum(dim=dims, keepdim=True)
    x_finite = x.abs() != float("inf")
    out = _C.where(x_finite & (x == x), x + zero / count, special)
    return out if keepdim else _squeeze_dims(out, dims)


def _squeeze_dims(x, dims):
    for d in sorted(dims, reverse=True):
        x = x.squeeze(d)
    return x


def _no_grad():
    from .autograd import no_grad

    return no_grad()


def _cumsum(self, dim, dtype=None):
    x = self if dtype is None else _c_to_dtype(self, dtype)
    if x.dim() == 0:
        return x.clone()
    dim = dim % x.dim()
    if not (x.requires_grad and _C.is_grad_enabled()):
        out_dtype = x.dtype if x.dtype.is_floating_point else _C.dtype.int64
        acc = np.cumsum(x.detach().numpy(), axis=dim)
        return _from_numpy(np.ascontiguousarray(acc)).to(out_dtype)
    # With history: a product with an upper-triangular matrix of ones, whose backward is
    # matmul's (a reversed cumulative sum).
    n = x.shape[dim]
    ones = _from_numpy(np.triu(np.ones((n, n), dtype=np.float32)))
    return (x.transpose(dim, -1) @ ones).transpose(dim, -1)


def _from_numpy(a):
    a = np.asarray(a)  # (np.ascontiguousarray would make a 0-d array 1-d)
    return _C._from_numpy(a if a.flags.c_contiguous else a.copy(order="C"))


def _floor_divide(a, b):
    return _binary_floor(a, b, remainder=False)


def _binary_floor(a, b, remainder):
    """a // b and a % b with Python's (and PyTorch's) floor semantics."""
    if not isinstance(a, T):
        a = _as_operand(a, b)
    if not isinstance(b, T):
        b = _as_operand(b, a)
    if a.dtype.is_floating_point or b.dtype.is_floating_point:
        q = a / b
        floor = _floor(q)
        return a - floor * b if remainder else floor
    # integers: through numpy, which floors like Python and raises nothing on zero
    na, nb = a.numpy(), b.numpy()
    if (nb == 0).any():
        raise RuntimeError("ZeroDivisionError")
    out = np.mod(na, nb) if remainder else np.floor_divide(na, nb)
    return _from_numpy(np.asarray(out)).to(_C.dtype.int64 if out.dtype.itemsize == 8 else a.dtype)


def _as_operand(v, like):
    dtype = like.dtype if isinstance(v, int) and not isinstance(v, bool) else None
    if isinstance(v, float) and not like.dtype.is_floating_point:
        dtype = _C.dtype.float32
    return _C._from_numpy(np.asarray(v, dtype=_np_dtype(dtype or like.dtype)))


def _np_dtype(dtype):
    return {"float32": np.float32, "float64": np.float64, "int64": np.int64,
            "int32": np.int32, "uint8": np.uint8, "bool": np.bool_,
            "float16": np.float16}.get(dtype.name, np.float32)  # fmt: skip


def _floor(x):
    """floor(x) for floats, from a detached numpy floor (its gradient is zero, as PyTorch's)."""
    return _from_numpy(np.floor(x.detach().numpy())).to(x.dtype)


def _mod(self, other):
    return _binary_floor(self, other, remainder=True)


def _rmod(self, other):
    return _binary_floor(other, self, remainder=True)


def _floordiv(self, other):
    return _binary_floor(self, other, remainder=False)


def _rfloordiv(self, other):
    return _binary_floor(other, self, remainder=False)


# ---- new_* factories -----------------------------------------------------------------------------


def _new_factory(name):
    def make(self, *size, dtype=None, device=None, requires_grad=False, **kw):
        import phalanx

        check_device(device, f"new_{name}")
        if len(size) == 1 and not isinstance(size[0], int):
            size = tuple(size[0])
        dtype = self.dtype if dtype is None else dtype
        if name == "full":
            shape, fill = size
            return phalanx.full(tuple(shape), fill, dtype=dtype, requires_grad=requires_grad)
        return getattr(phalanx, name)(size, dtype=dtype, requires_grad=requires_grad)

    return make


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    import phalanx

    check_device(device, "new_tensor")
    return phalanx.tensor(
        data, dtype=self.dtype if dtype is None else dtype, requires_grad=requires_grad
    )


# ---- indexing with boolean masks ----


def _mask_index(self, index):
    """A bool tensor as the only index: (rows of self flattened over the mask's dims, flat
    positions of the true entries), as PyTorch selects x[mask]."""
    if list(index.shape) != list(self.shape[: index.dim()]):
        raise IndexError(
            f"The shape of the mask {list(index.shape)} does not match the shape of the "
            f"indexed tensor {list(self.shape)}"
        )
    flat = self.reshape((-1,) + tuple(self.shape[index.dim() :]))
    positions = np.flatnonzero(index.numpy()).astype(np.int64)
    return flat, _C._from_numpy(positions)


def _is_mask(index):
    return isinstance(index, T) and index.dtype == _C.dtype.bool


def _getitem(self, index):
    if _is_mask(index):
        flat, positions = _mask_index(self, index)
        return flat[positions]
    return _c_getitem(self, index)


def _setitem(self, index, value):
    if _is_mask(index):
        if not isinstance(value, T) or value.dim() == 0:
            self.copy_(_masked_fill(self, _broadcast_mask(index, self), value))
            return
        if not self.is_contiguous():
            raise RuntimeError("boolean-mask assignment needs a contiguous tensor")
        flat, positions = _mask_index(self, index)
        flat[positions] = value
        return
    _c_setitem(self, index, value)


def _broadcast_mask(mask, like):
    extra = like.dim() - mask.dim()
    return mask.reshape(tuple(mask.shape) + (1,) * extra).expand(tuple(like.shape))


# ---- printing ----


def _format(self, spec):
    if self.dim() == 0:
        return format(self.item(), spec)
    if spec:
        raise TypeError("unsupported format string passed to Tensor.__format__")
    return str(self)


def _data_get(self):
    return self.detach()


def _data_set(self, value):
    if list(value.shape) != list(self.shape) or value.dtype != self.dtype:
        raise RuntimeError(
            f".data = : phalanx replaces a tensor's values in place, so the new data must have "
            f"its shape {list(self.shape)} and dtype {self.dtype}; got {list(value.shape)} "
            f"{value.dtype}"
        )
    self.detach().copy_(value)


def _functional(name):
    def method(self, *args, **kwargs):
        from .nn import functional as F

        return getattr(F, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


def install() -> None:
    T.to = _to
    T.cpu = _cpu
    T.cuda = _cuda
    T.device = property(lambda self: CPU)
    T.is_cuda = property(lambda self: False)
    T.is_cpu = property(lambda self: True)
    T.get_device = lambda self: -1
    T.type = _type
    T.view_as = _view_as
    T.reshape_as = _reshape_as
    T.expand_as = _expand_as
    T.split = _split
    T.chunk = _chunk
    T.repeat = _repeat
    T.masked_fill = _masked_fill
    T.masked_fill_ = _masked_fill_
    T.var = _var
    T.std = _std
    T.any = _any
    T.all = _all
    T.amax = _amax
    T.amin = _amin
    T.cumsum = _cumsum
    T.__mod__ = _mod
    T.__rmod__ = _rmod
    T.remainder = _mod
    T.__floordiv__ = _floordiv
    T.__rfloordiv__ = _rfloordiv
    T.floor_divide = _floordiv
    T.new_zeros = _new_factory("zeros")
    T.new_ones = _new_factory("ones")
    T.new_empty = _new_factory("empty")
    T.new_full = _new_factory("full")
    T.new_tensor = _new_tensor
    T.__getitem__ = _getitem
    T.__setitem__ = _setitem
    T.__format__ = _format
    T.data = property(_data_get, _data_set)
    for name in ("softmax", "log_softmax", "sigmoid", "relu", "tanh"):
        setattr(T, name, _functional(name))
    _install_bitwise()


# ---- bitwise and logical operators (no gradients: results are bool or integer) ------------------


def _bitwise(np_fn):
    def op(self, other):
        a = self._numpy_unchecked()
        b = other._numpy_unchecked() if isinstance(other, T) else other
        return _from_numpy(np.asarray(np_fn(a, b)))

    return op


def _reflected(np_fn):
    def op(self, other):
        return _bitwise(np_fn)(self, other)

    return op


def _install_bitwise() -> None:
    for name, fn in (("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)):
        setattr(T, f"__{name}__", _bitwise(fn))
        setattr(T, f"__r{name}__", _reflected(fn))
        setattr(T, f"bitwise_{name}", _bitwise(fn))
    for name, fn in (("and", np.logical_and), ("or", np.logical_or), ("xor", np.logical_xor)):
        setattr(T, f"logical_{name}", _bitwise(fn))
