"""default_collate and default_convert, with PyTorch's rules.

Tensors and numpy arrays are stacked along a new first dimension; Python ints become an int64
tensor, floats a float32 one (phalanx computes in float32), bools a bool tensor; strings stay a
list; dicts, namedtuples and sequences are collated field by field (a tuple of fields gives a
list, as in PyTorch).
"""

from __future__ import annotations

import collections.abc as abc
import numbers

import numpy as np

import phalanx

__all__ = ["default_collate", "default_convert"]

_ERROR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _stack_numpy(batch) -> phalanx.Tensor:
    if batch[0].dtype.kind in "OSUV":
        raise TypeError(_ERROR.format(batch[0].dtype))
    arr = np.stack(batch)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return phalanx.as_tensor(np.ascontiguousarray(arr))


def default_collate(batch):
    """Turns a list of samples into a batch (see the module docstring)."""
    elem = batch[0]
    if isinstance(elem, phalanx.Tensor):
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) > 1:
            raise RuntimeError(
                "default_collate: stack expects each tensor to be equal size, "
                f"but got {sorted(shapes)}"
            )
        return phalanx.stack(list(batch), 0)
    is_scalar = isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_))
    if isinstance(elem, np.ndarray) or is_scalar:
        return _stack_numpy([np.asarray(b) for b in batch])
    if isinstance(elem, bool):
        return phalanx.tensor(list(batch), dtype=phalanx.bool)
    if isinstance(elem, numbers.Integral):
        return phalanx.tensor(list(batch), dtype=phalanx.int64)
    if isinstance(elem, numbers.Real):
        return phalanx.tensor(list(batch), dtype=phalanx.float32)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed
        try:
            return type(elem)(transposed)
        except TypeError:
            return transposed
    raise TypeError(_ERROR.format(type(elem)))


def default_convert(data):
    """The conversion used when automatic batching is off: numpy arrays become tensors,
    containers are converted element by element, everything else is left alone."""
    if isinstance(data, phalanx.Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype.kind in "OSUV":
            return data
        return phalanx.as_tensor(np.ascontiguousarray(data))
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return phalanx.as_tensor(np.asarray(data))
    if isinstance(data, abc.Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
