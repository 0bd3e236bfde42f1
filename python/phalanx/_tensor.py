"""Python-side pieces of phalanx.Tensor: printing, lists, numpy protocol, result types."""

from __future__ import annotations

import copy
from collections import namedtuple

import numpy as np

from . import _C


class Size(tuple):
    """A tensor's shape: a tuple of ints, printed as PyTorch prints torch.Size."""

    def __repr__(self) -> str:
        return f"phalanx.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


_max_result = namedtuple("max", ["values", "indices"])
_min_result = namedtuple("min", ["values", "indices"])


def _as_numpy(t: _C.Tensor) -> np.ndarray:
    if t.dtype == _C.dtype.bfloat16:
        t = t.float()
    return t._numpy_unchecked()


def _repr(self: _C.Tensor) -> str:
    arr = _as_numpy(self)
    prefix = "tensor("
    if arr.dtype == np.float16 or arr.dtype == np.float32:
        body = np.array2string(
            arr, separator=", ", prefix=prefix, precision=4, floatmode="maxprec_equal"
        )
    else:
        body = np.array2string(arr, separator=", ", prefix=prefix)
    extras = []
    if self.dtype not in (_C.dtype.float32, _C.dtype.int64, _C.dtype.bool):
        extras.append(f"dtype={self.dtype!r}")
    if self.numel() == 0 and self.dim() != 1:
        extras.append(f"size={tuple(self.shape)}")
    if self.grad_fn is not None:
        extras.append(f"grad_fn={self.grad_fn!r}")
    elif self.requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"


def _tolist(self: _C.Tensor):
    return _as_numpy(self).tolist()


def _array(self: _C.Tensor, dtype=None, copy=None):
    arr = _as_numpy(self)
    return arr.astype(dtype) if dtype is not None else arr


def _len(self: _C.Tensor) -> int:
    if self.dim() == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


def _iter(self: _C.Tensor):
    if self.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(self.shape[0]))


def _bool(self: _C.Tensor) -> bool:
    if self.numel() != 1:
        raise RuntimeError(f"Boolean value of Tensor with {self.numel()} values is ambiguous")
    return bool(self.item())


def _float(self: _C.Tensor) -> float:
    return float(self.item())


def _int(self: _C.Tensor) -> int:
    return int(self.item())


def _index(self: _C.Tensor) -> int:
    if self.dtype.is_floating_point or self.numel() != 1:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return int(self.item())


def _type_as(self: _C.Tensor, other: _C.Tensor) -> _C.Tensor:
    return self.to(other.dtype)


def _deepcopy(self: _C.Tensor, memo: dict) -> _C.Tensor:
    """A copy with its own storage; leaves keep requires_grad and a copy of .grad, and
    subclasses (nn.Parameter) stay subclasses, as copy.deepcopy of a torch tensor does."""
    if id(self) in memo:
        return memo[id(self)]
    data = self.detach().clone()
    cls = type(self)
    if cls is _C.Tensor:
        new = data
    else:
        new = cls.__new__(cls)
        _C.Tensor.__init__(new, data)
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
    if self.requires_grad and self.is_leaf:
        new.requires_grad_(True)
    if self.grad is not None:
        new.grad = self.grad.clone()
    memo[id(self)] = new
    return new


def _dtype_repr(self: _C.dtype) -> str:
    return f"phalanx.{self.name}"


def _install() -> None:
    T = _C.Tensor
    T.__repr__ = _repr
    T.__str__ = _repr
    T.tolist = _tolist
    T.__array__ = _array
    T.__len__ = _len
    T.__iter__ = _iter
    T.__bool__ = _bool
    T.__float__ = _float
    T.__int__ = _int
    T.__index__ = _index
    T.type_as = _type_as
    T.__array_priority__ = 1000  # numpy defers to our reflected operators
    T.__deepcopy__ = _deepcopy
    _C.dtype.__repr__ = _dtype_repr
    _C.dtype.__str__ = _dtype_repr
