"""Shared helpers for the phalanx-vs-PyTorch test suite.

Inputs are seeded numpy arrays fed identically to both frameworks; outputs and
gradients are compared with numpy.testing.assert_allclose.
"""

import platform

import numpy as np

import phalanx

RTOL = 1e-4
ATOL = 1e-5

# oneDNN's convolution works on channel-blocked layouts on x86-64: it writes nChw16c / nChw8c
# and reads its weight reordered from the plain parameter. On aarch64 (its GEMM convolution over
# OpenBLAS, the phones' path) it writes plain NCHW and reads the plain weight as it is: no weight
# reorders, and what follows a convolution (batch norm, the BN+ReLU fusion) takes its plain path.
CONV_IS_BLOCKED = platform.machine() in ("x86_64", "AMD64")


def _is_torch(t):
    return type(t).__module__.split(".")[0] == "torch"


def to_numpy(t):
    """phalanx / torch tensor (or anything array-like) -> numpy array."""
    if isinstance(t, np.ndarray):
        return t
    if hasattr(t, "detach"):
        t = t.detach()
        if _is_torch(t):
            import torch

            if t.dtype == torch.bfloat16:
                t = t.float()
        else:
            if t.dtype == phalanx.bfloat16:
                t = t.float()
        return np.asarray(t.numpy())
    return np.asarray(t)


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=""):
    a = to_numpy(actual)
    e = to_numpy(expected)
    assert a.shape == e.shape, f"shape mismatch: phalanx {a.shape} vs reference {e.shape} {msg}"
    if a.dtype == np.bool_ or e.dtype == np.bool_:
        np.testing.assert_array_equal(a, e, err_msg=msg)
    else:
        np.testing.assert_allclose(
            a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol, err_msg=msg
        )


def rng(seed=0):
    return np.random.default_rng(seed)


def randn(shape, seed=0, scale=1.0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def uniform(shape, seed=0, low=-1.0, high=1.0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def positive(shape, seed=0, low=0.5, high=2.0):
    return uniform(shape, seed, low, high)


def away_from_zero(shape, seed=0, margin=0.1):
    """Random float32 values with |x| >= margin (for abs/relu-like kinks)."""
    a = uniform(shape, seed, margin, 1.5)
    sign = np.where(np.random.default_rng(seed + 977).random(shape) < 0.5, -1.0, 1.0)
    return (a * sign).astype(np.float32)


def pair(arr, requires_grad=True):
    """Same data as (phalanx tensor, torch tensor)."""
    import torch

    arr = np.ascontiguousarray(arr)
    return (
        phalanx.tensor(arr.copy(), requires_grad=requires_grad),
        torch.tensor(arr.copy(), requires_grad=requires_grad),
    )


DTYPE_PAIRS = [
    ("float32", "float32"),
    ("float16", "float16"),
    ("bfloat16", "bfloat16"),
    ("int64", "int64"),
    ("int32", "int32"),
    ("uint8", "uint8"),
    ("bool", "bool"),
]


def px_dtype(name):
    return getattr(phalanx, name)


def th_dtype(name):
    import torch

    return getattr(torch, name)


def same_dtype(px_dt, th_dt):
    for p, t in DTYPE_PAIRS:
        if th_dt == th_dtype(t):
            return px_dt == px_dtype(p)
    return False


def upstream_grad(shape, seed=1234):
    return np.asarray(np.random.default_rng(seed).standard_normal(tuple(shape)), dtype=np.float32)


def check_op(
    px_fn,
    th_fn,
    arrays,
    *,
    grad=True,
    requires_grad=None,
    rtol=RTOL,
    atol=ATOL,
    grad_rtol=None,
    grad_atol=None,
    seed=1234,
    check_dtype=True,
):
    """Run px_fn / th_fn on the same inputs, compare the outputs and, with a random
    upstream gradient, the gradient of every input that requires grad."""
    import torch

    if requires_grad is None:
        requires_grad = [grad and np.asarray(a).dtype.kind == "f" for a in arrays]
    px_in = [phalanx.tensor(np.array(a), requires_grad=r) for a, r in zip(arrays, requires_grad)]
    th_in = [torch.tensor(np.array(a), requires_grad=r) for a, r in zip(arrays, requires_grad)]
    px_out = px_fn(*px_in)
    th_out = th_fn(*th_in)
    assert_close(px_out, th_out, rtol=rtol, atol=atol, msg="forward")
    if check_dtype:
        assert same_dtype(px_out.dtype, th_out.dtype), (px_out.dtype, th_out.dtype)
    if grad and any(requires_grad):
        assert px_out.requires_grad
        g = upstream_grad(th_out.shape, seed)
        px_out.backward(phalanx.tensor(g))
        th_out.backward(torch.tensor(g))
        gr = rtol if grad_rtol is None else grad_rtol
        ga = atol if grad_atol is None else grad_atol
        for i, (p, t, r) in enumerate(zip(px_in, th_in, requires_grad)):
            if not r:
                continue
            assert p.grad is not None, f"input {i} got no gradient"
            assert tuple(p.grad.shape) == tuple(p.shape)
            assert_close(p.grad, t.grad, rtol=gr, atol=ga, msg=f"grad of input {i}")
    return px_out, th_out


def numeric_gradcheck(fn, arrays, eps=1e-2, rtol=3e-2, atol=3e-3, seed=7):
    """Central finite differences of phalanx's own forward vs its autograd.

    fn maps phalanx tensors to a phalanx tensor; the scalar checked is
    sum(fn(...) * w) for a fixed random w.
    """
    arrays = [np.array(a, dtype=np.float32) for a in arrays]
    xs = [phalanx.tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*xs)
    w = upstream_grad(tuple(out.shape), seed)
    (out * phalanx.tensor(w)).sum().backward()
    analytic = [to_numpy(x.grad).astype(np.float64) for x in xs]

    def scalar(arrs):
        with phalanx.no_grad():
            o = fn(*[phalanx.tensor(a) for a in arrs])
            return float((to_numpy(o).astype(np.float64) * w).sum())

    for k, a in enumerate(arrays):
        num = np.zeros(a.shape, dtype=np.float64)
        flat = a.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            fp = scalar(arrays)
            flat[i] = orig - eps
            fm = scalar(arrays)
            flat[i] = orig
            num.reshape(-1)[i] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(
            analytic[k],
            num,
            rtol=rtol,
            atol=atol,
            err_msg=f"finite-difference mismatch for input {k}",
        )
