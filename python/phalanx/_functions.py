"""Top-level functions PyTorch scripts call (torch.topk, torch.einsum, torch.isnan, ...),
composed from phalanx's C++ ops so gradients come from those ops' backward functions.

Sorting-like functions (sort, topk, unique) find their order with numpy on detached values
and then select with an index op, whose backward scatters the gradient back.
"""

from __future__ import annotations

import functools
import string
from collections import namedtuple

import numpy as np

from . import _C
from ._device import check_device
from ._tensor_methods import _from_numpy

T = _C.Tensor

_sort_result = namedtuple("sort", ["values", "indices"])
_topk_result = namedtuple("topk", ["values", "indices"])


def with_device(fn):
    """Adds PyTorch's device= (and pin_memory=, layout=) keywords to a factory: the CPU is
    accepted, any other device raises."""

    @functools.wraps(fn)
    def factory(*args, device=None, pin_memory=False, layout=None, **kwargs):
        check_device(device, getattr(fn, "__name__", "factory"))
        return fn(*args, **kwargs)

    return factory


# ---- activations as plain functions ----


def _functional(name):
    def fn(input, *args, **kwargs):
        from .nn import functional as F

        return getattr(F, name)(input, *args, **kwargs)

    fn.__name__ = name
    return fn


softmax = _functional("softmax")
log_softmax = _functional("log_softmax")
sigmoid = _functional("sigmoid")
tanh = _functional("tanh")
relu = _functional("relu")


# ---- selection along a dimension ----


def _take_along(x, order, dim):
    """x's values at `order` (int64 numpy array, x's shape but for `dim`) along `dim`, through
    one flat index op so the gradient flows back to x."""
    moved = x.transpose(dim, -1).contiguous() if x.dim() > 0 else x.reshape(1)
    n = moved.shape[-1] if moved.dim() else 1
    rows = moved.reshape(-1, n)
    order_moved = np.ascontiguousarray(np.moveaxis(order, dim, -1)).reshape(rows.shape[0], -1)
    flat = (np.arange(rows.shape[0])[:, None] * n + order_moved).reshape(-1)
    picked = rows.reshape(-1)[_from_numpy(flat.astype(np.int64))]
    shape = list(moved.shape[:-1]) + [order_moved.shape[1]]
    out = picked.reshape(shape)
    return out.transpose(dim, -1) if x.dim() > 0 else out.reshape(())


def _order(x, dim, descending):
    values = x.detach()._numpy_unchecked()
    if x.dim() == 0:
        return np.zeros((), np.int64)
    if descending:
        # PyTorch puts NaN first when descending, like the largest value
        key = np.where(np.isnan(values), -np.inf, -values) if values.dtype.kind == "f" else -values
        order = np.argsort(key, axis=dim, kind="stable")
        if values.dtype.kind == "f":
            nan_first = np.argsort(~np.isnan(np.take_along_axis(values, order, dim)), axis=dim,
                                   kind="stable")  # fmt: skip
            order = np.take_along_axis(order, nan_first, dim)
        return order.astype(np.int64)
    return np.argsort(values, axis=dim, kind="stable").astype(np.int64)


def sort(input, dim=-1, descending=False, stable=False):
    dim = dim % max(input.dim(), 1)
    order = _order(input, dim, descending)
    return _sort_result(_take_along(input, order, dim), _from_numpy(order))


def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending, stable).indices


def topk(input, k, dim=-1, largest=True, sorted=True):
    dim = dim % max(input.dim(), 1)
    n = input.shape[dim] if input.dim() else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"selected index k out of range: k={k} for dimension of size {n}")
    order = np.take(_order(input, dim, largest), np.arange(k), axis=dim) if input.dim() else \
        _order(input, dim, largest)  # fmt: skip
    return _topk_result(_take_along(input, order, dim), _from_numpy(order))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique(dim=...): only the flattened form is supported")
    values, inverse, counts = np.unique(
        input._numpy_unchecked(), return_inverse=True, return_counts=True
    )
    out = [_from_numpy(values)]
    if return_inverse:
        out.append(_from_numpy(inverse.reshape(tuple(input.shape)).astype(np.int64)))
    if return_counts:
        out.append(_from_numpy(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


# ---- linear algebra ----


def mm(input, mat2):
    if input.dim() != 2 or mat2.dim() != 2:
        raise RuntimeError(
            f"mm: expected 2-D tensors, got {input.dim()}-D and {mat2.dim()}-D "
            f"(shapes {list(input.shape)} and {list(mat2.shape)})"
        )
    return input @ mat2


def bmm(input, mat2):
    if input.dim() != 3 or mat2.dim() != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(
            f"bmm: expected 3-D tensors with equal batch sizes, got shapes {list(input.shape)} "
            f"and {list(mat2.shape)}"
        )
    return input @ mat2


def einsum(equation, *operands):
    """Each operand is permuted and unsqueezed onto all the equation's letters, the operands
    are multiplied with broadcasting and the letters not in the output summed away; gradients
    are those of the product and the sum."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise NotImplementedError("einsum: '...' (ellipsis) is not supported")
    inputs, _, output = eq.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum(): {len(terms)} subscripts but {len(operands)} operands")
    if "->" not in eq:  # implicit output: letters seen once, in alphabetical order
        counts = {c: inputs.count(c) for c in inputs if c in string.ascii_letters}
        output = "".join(sorted(c for c, n in counts.items() if n == 1))
    letters = list(output) + sorted({c for t in terms for c in t} - set(output))
    product = None
    for term, x in zip(terms, operands):
        if len(term) != x.dim():
            raise RuntimeError(
                f"einsum(): the subscript '{term}' has {len(term)} letters for an operand of "
                f"{x.dim()} dimensions"
            )
        # repeated letters in one term (a diagonal) are not supported
        if len(set(term)) != len(term):
            raise NotImplementedError(f"einsum: repeated subscript in '{term}' is not supported")
        present = [c for c in letters if c in term]
        y = x.permute(*[term.index(c) for c in present]) if x.dim() > 1 else x
        shape, it = [], iter(y.shape)
        for c in letters:
            shape.append(next(it) if c in term else 1)
        y = y.reshape(shape)
        product = y if product is None else product * y
    summed = tuple(range(len(output), len(letters)))
    return product.sum(dim=summed) if summed else product


# ---- element-wise ----


def square(input):
    """input * input, as torch.square: the product's backward gives 2 * input * grad; integer
    tensors stay integer."""
    return input * input


# ---- tests on values ----


def isnan(input):
    return input != input


def isinf(input):
    if not input.dtype.is_floating_point:
        return input != input
    return input.abs() == float("inf")


def isfinite(input):
    if not input.dtype.is_floating_point:
        return input == input
    return (input - input) == 0  # inf - inf and nan - nan are NaN


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = input._numpy_unchecked(), other._numpy_unchecked()
    return _from_numpy(np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan)._numpy_unchecked().all())


def equal(input, other):
    return list(input.shape) == list(other.shape) and bool(
        np.array_equal(input._numpy_unchecked(), other._numpy_unchecked())
    )


# ---- creation ----


def linspace(start, end, steps, *, dtype=None, requires_grad=False):
    import phalanx

    values = np.linspace(float(start), float(end), int(steps))
    out = phalanx.tensor(values.astype(np.float32))
    if dtype is not None:
        out = out.to(dtype)
    return out.requires_grad_(True) if requires_grad else out


def eye(n, m=None, *, dtype=None, requires_grad=False):
    import phalanx

    out = phalanx.tensor(np.eye(n, m if m is not None else n, dtype=np.float32))
    if dtype is not None:
        out = out.to(dtype)
    return out.requires_grad_(True) if requires_grad else out


# ---- compilation and mixed precision ----


def compile(model=None, **kwargs):  # noqa: A001 - PyTorch's name
    """Returns `model` unchanged: phalanx runs eagerly (each op a cached oneDNN primitive), so
    there is nothing to compile. Accepts torch.compile's keywords and its decorator forms."""
    if model is None:
        return lambda m: m
    return model


class autocast:  # noqa: N801 - PyTorch's name
    """Mixed precision is not supported yet: phalanx trains in float32. ``enabled=False`` is
    accepted (a no-op); enabling it raises, naming what is supported."""

    def __init__(self, device_type="cpu", dtype=None, enabled=True, cache_enabled=None):
        if enabled:
            raise RuntimeError(
                "autocast: mixed precision is not supported by phalanx; training runs in "
                "float32 (float16/bfloat16 are storage types: tensor.half(), .bfloat16()). "
                "Remove autocast or pass enabled=False."
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        return fn
