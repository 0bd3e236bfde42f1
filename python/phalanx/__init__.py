"""phalanx: deep-learning training on a cluster of phones, PyTorch-shaped.

The tensor, autograd engine and oneDNN kernels live in the C++ extension phalanx._C; this
package gives them PyTorch's names and signatures.
"""

from __future__ import annotations

import builtins as _builtins
import os as _os

import numpy as _np

from . import _C, _tensor_methods, backends, cuda
from ._C import (
    Generator,
    Tensor,
    abs,
    add,
    argmax,
    argmin,
    cat,
    clamp,
    cos,
    div,
    dtype,
    empty,
    empty_cache,
    eq,
    exp,
    flatten,
    full,
    ge,
    get_num_threads,
    gt,
    index_select,
    is_grad_enabled,
    le,
    log,
    logical_not,
    lt,
    manual_seed,
    matmul,
    max,
    maximum,
    mean,
    memory_stats,
    min,
    minimum,
    mul,
    ne,
    neg,
    ones,
    permute,
    pow,
    rand,
    randn,
    randperm,
    reciprocal,
    reset_peak_memory_stats,
    reshape,
    set_num_threads,
    sign,
    sin,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    transpose,
    unsqueeze,
    where,
    zeros,
)
from ._device import accelerator, device
from ._functions import (
    allclose,
    argsort,
    autocast,
    bmm,
    compile,
    einsum,
    equal,
    eye,
    isclose,
    isfinite,
    isinf,
    isnan,
    linspace,
    log_softmax,
    mm,
    relu,
    sigmoid,
    softmax,
    sort,
    square,
    tanh,
    topk,
    unique,
    with_device,
)
from ._tensor import Size, _install
from .autograd import enable_grad, inference_mode, no_grad, set_grad_enabled

_install()
_tensor_methods.install()
Tensor.sort, Tensor.argsort, Tensor.topk = sort, argsort, topk
Tensor.square = square
Tensor.square_ = lambda self: self.pow_(2)  # pow_ saves the input its backward needs

__version__ = "0.1.0"

float32 = float = dtype.float32
float64 = double = dtype.float64
float16 = half = dtype.float16
bfloat16 = dtype.bfloat16
int64 = long = dtype.int64
int32 = int = dtype.int32
uint8 = dtype.uint8
bool = dtype.bool  # noqa: A001 - PyTorch's name

_NUMPY_TO_DTYPE = {
    _np.dtype("float32"): float32,
    _np.dtype("float64"): float64,
    _np.dtype("float16"): float16,
    _np.dtype("int64"): int64,
    _np.dtype("int32"): int32,
    _np.dtype("int16"): int32,
    _np.dtype("int8"): int32,
    _np.dtype("uint8"): uint8,
    _np.dtype("bool"): bool,
}
_DTYPE_TO_NUMPY = {
    float32: _np.float32,
    float64: _np.float64,
    float16: _np.float16,
    int64: _np.int64,
    int32: _np.int32,
    uint8: _np.uint8,
    bool: _np.bool_,
}


def from_numpy(array: _np.ndarray) -> Tensor:
    """A tensor sharing the array's memory (no copy) if the array is writeable.

    A read-only array (`np.frombuffer(bytes)`, `np.load(..., mmap_mode="r")`) is copied:
    phalanx never shares memory it may not write. Arrays not in native byte order raise
    TypeError; `tensor()` converts them.
    """
    if not isinstance(array, _np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return _C._from_numpy(array)


def tensor(data, dtype: dtype | None = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, numpy arrays, tensors).

    As in PyTorch, Python floats make float32 and a float64 numpy array (or numpy float64
    scalar) makes float64, which reads back exactly; see docs/compat.md for what float64 runs.
    """
    if isinstance(data, Tensor):
        out = data.detach().clone()
        if dtype is not None:
            out = out.to(dtype)
    else:
        arr = _np.asarray(data)
        if not arr.dtype.isnative:  # big-endian data: convert the values, never reinterpret
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype not in _NUMPY_TO_DTYPE:
            raise TypeError(f"tensor(): can't convert data of numpy dtype {arr.dtype}")
        target = dtype if dtype is not None else _NUMPY_TO_DTYPE[arr.dtype]
        if dtype is None and target == float64 and not isinstance(data, (_np.ndarray, _np.generic)):
            target = float32  # Python floats are float32 tensors, as torch's default dtype
        if target == bfloat16:
            out = _C._from_numpy(_np.ascontiguousarray(arr, dtype=_np.float32)).to(bfloat16)
        else:
            out = _C._from_numpy(
                _np.array(arr, dtype=_DTYPE_TO_NUMPY[target], copy=True, order="C")
            )
    if requires_grad:
        out.requires_grad_(True)
    return out


def as_tensor(data, dtype: dtype | None = None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    exact = isinstance(data, _np.ndarray) and data.dtype in _DTYPE_TO_NUMPY.values()
    if exact and dtype is None and _builtins.all(s >= 0 for s in data.strides):
        return from_numpy(data)  # shares memory, as torch.as_tensor does
    return tensor(data, dtype=dtype)


def arange(
    start, end=None, step=1, *, dtype: dtype | None = None, requires_grad: bool = False
) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = _builtins.all(
            isinstance(v, (_builtins.int, _np.integer)) for v in (start, end, step)
        )
        dtype = int64 if is_int else float32
    return _C._arange(start, end, step, dtype, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype: dtype = int64) -> Tensor:
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high is None:
        low, high = 0, low
    return _C._randint(low, high, list(size), generator, dtype)


def _like(fn):
    def make(input: Tensor, *args, dtype: dtype | None = None, requires_grad: bool = False, **kw):
        return fn(
            input.shape,
            *args,
            dtype=dtype if dtype is not None else input.dtype,
            requires_grad=requires_grad,
            **kw,
        )

    return make


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)


def full_like(
    input: Tensor, fill_value, *, dtype: dtype | None = None, requires_grad: bool = False
):
    return full(
        input.shape,
        fill_value,
        dtype=dtype if dtype is not None else input.dtype,
        requires_grad=requires_grad,
    )


def rand_like(input: Tensor, *, generator=None, requires_grad: bool = False) -> Tensor:
    return rand(input.shape, generator=generator, requires_grad=requires_grad)


def randn_like(input: Tensor, *, generator=None, requires_grad: bool = False) -> Tensor:
    return randn(input.shape, generator=generator, requires_grad=requires_grad)


def numel(input: Tensor) -> int:
    return input.numel()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def _method_as_function(name):
    def fn(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = name
    return fn


# Functions PyTorch has both as torch.f(x, ...) and x.f(...): the method is the one implementation.
for _name in ("std", "var", "norm", "any", "all", "amax", "amin", "cumsum", "chunk", "split",
              "masked_fill", "remainder", "floor_divide", "clone", "detach",
              "logical_and", "logical_or", "logical_xor"):  # fmt: skip
    globals()[_name] = _method_as_function(_name)

# PyTorch's device= keyword on factories: the CPU is accepted, any other device raises.
for _name in ("zeros", "ones", "empty", "full", "rand", "randn", "randperm", "arange", "tensor",
              "as_tensor", "randint", "zeros_like", "ones_like", "empty_like", "full_like",
              "rand_like", "randn_like", "linspace", "eye"):  # fmt: skip
    globals()[_name] = with_device(globals()[_name])


def get_default_dtype() -> dtype:
    return float32


from . import autograd, nn, optim, utils  # noqa: E402  (submodules that use the names above)
from ._sweep.report import report  # noqa: E402
from ._sweep.search import sweep  # noqa: E402
from .serialization import load, save  # noqa: E402

if _os.environ.get("PHALANX_TIMELINE"):  # record this process's timeline (see utils/timeline.py)
    from ._timeline.session import start_from_env as _start_timeline

    _start_timeline()
