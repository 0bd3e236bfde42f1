"""Elementwise ops (functional, method and operator forms), broadcasting with
gradients reduced to each input's shape, comparisons, in-place ops."""

import numpy as np
import pytest
from conftest import (
    assert_close,
    away_from_zero,
    check_op,
    pair,
    positive,
    randn,
    same_dtype,
    to_numpy,
    uniform,
    upstream_grad,
)

import phalanx

torch = pytest.importorskip("torch")

BROADCAST_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 3, 4)),
    ((5,), (1,)),
    ((2, 1, 3), (4, 1)),
    ((), (3, 2)),
    ((3, 2), ()),
    ((1, 1), (2, 5)),
    ((2, 3, 1, 5), (3, 4, 1)),
    ((1,), ()),
]


def _inputs(op, sa, sb, seed):
    a = randn(sa, seed=seed)
    b = randn(sb, seed=seed + 1)
    if op == "pow":
        a = positive(sa, seed=seed, low=0.5, high=2.0)
        b = uniform(sb, seed=seed + 1, low=-1.5, high=2.0)
    if op == "div":
        b = away_from_zero(sb, seed=seed + 1, margin=0.5)
    return a, b


BINARY = {
    "add": (phalanx.add, torch.add),
    "sub": (phalanx.sub, torch.sub),
    "mul": (phalanx.mul, torch.mul),
    "div": (phalanx.div, torch.div),
    "pow": (phalanx.pow, torch.pow),
    "maximum": (phalanx.maximum, torch.maximum),
    "minimum": (phalanx.minimum, torch.minimum),
}


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("sa,sb", BROADCAST_SHAPES, ids=[f"{a}-{b}" for a, b in BROADCAST_SHAPES])
def test_binary_broadcast_functional(op, sa, sb):
    a, b = _inputs(op, sa, sb, seed=len(sa) * 10 + len(sb))
    pf, tf = BINARY[op]
    check_op(pf, tf, [a, b])


OPERATORS = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "pow": lambda x, y: x**y,
}


@pytest.mark.parametrize("op", list(OPERATORS))
@pytest.mark.parametrize(
    "sa,sb", BROADCAST_SHAPES[:6], ids=[f"{a}-{b}" for a, b in BROADCAST_SHAPES[:6]]
)
def test_binary_operators(op, sa, sb):
    a, b = _inputs(op, sa, sb, seed=3)
    f = OPERATORS[op]
    check_op(f, f, [a, b])


def test_only_one_input_requires_grad():
    a, b = randn((2, 3), seed=1), randn((3,), seed=2)
    check_op(lambda x, y: x * y + y, lambda x, y: x * y + y, [a, b], requires_grad=[True, False])
    pa, pb = phalanx.tensor(a, requires_grad=True), phalanx.tensor(b)
    (pa * pb).sum().backward()
    assert pb.grad is None


SCALAR_CASES = [
    ("add_s", lambda x: x + 2.5),
    ("radd_s", lambda x: 2.5 + x),
    ("sub_s", lambda x: x - 1.5),
    ("rsub_s", lambda x: 2 - x),
    ("mul_s", lambda x: x * 3),
    ("rmul_s", lambda x: -0.5 * x),
    ("div_s", lambda x: x / 4.0),
    ("rdiv_s", lambda x: 2.0 / x),
    ("pow_s", lambda x: x**2),
    ("pow_frac", lambda x: x.abs() ** 1.5),
    ("pow_neg", lambda x: x**-1),
    ("rpow_s", lambda x: 2.0**x),
    ("neg_op", lambda x: -x),
    ("fn_add_s", lambda x: (phalanx if isinstance(x, phalanx.Tensor) else torch).add(x, 3.0)),
    ("fn_mul_s", lambda x: (phalanx if isinstance(x, phalanx.Tensor) else torch).mul(x, -2.0)),
    ("fn_pow_s", lambda x: (phalanx if isinstance(x, phalanx.Tensor) else torch).pow(x, 3)),
    ("fn_div_s", lambda x: (phalanx if isinstance(x, phalanx.Tensor) else torch).div(x, 0.25)),
    ("fn_sub_s", lambda x: (phalanx if isinstance(x, phalanx.Tensor) else torch).sub(x, 1)),
    ("method_pow", lambda x: x.abs().pow(0.5)),
    (
        "max_scalar_tensor",
        lambda x: (phalanx if isinstance(x, phalanx.Tensor) else torch).maximum(
            x, (phalanx if isinstance(x, phalanx.Tensor) else torch).zeros(1)
        ),
    ),
]


@pytest.mark.parametrize("name,fn", SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 5), ()])
def test_scalar_operands(name, fn, shape):
    x = away_from_zero(shape, seed=5, margin=0.3)
    check_op(fn, fn, [x])


def _m(x):
    return phalanx if isinstance(x, phalanx.Tensor) else torch


UNARY = [
    ("exp", lambda x: _m(x).exp(x), "any"),
    ("log", lambda x: _m(x).log(x), "pos"),
    ("sqrt", lambda x: _m(x).sqrt(x), "pos"),
    ("abs", lambda x: _m(x).abs(x), "nz"),
    ("neg", lambda x: _m(x).neg(x), "any"),
    ("m_exp", lambda x: x.exp(), "any"),
    ("m_log", lambda x: x.log(), "pos"),
    ("m_sqrt", lambda x: x.sqrt(), "pos"),
    ("m_abs", lambda x: x.abs(), "nz"),
]


@pytest.mark.parametrize("name,fn,dom", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", [(1,), (3, 5), (2, 3, 4, 5), ()])
def test_unary(name, fn, dom, shape):
    if dom == "pos":
        x = positive(shape, seed=8, low=0.1, high=3.0)
    elif dom == "nz":
        x = away_from_zero(shape, seed=8)
    else:
        x = randn(shape, seed=8)
    check_op(fn, fn, [x])


def test_unary_on_noncontiguous_view():
    x = randn((4, 6), seed=9)

    def f(t):
        return t.t()[1:, ::2].exp() * t[::2].t().sum()

    check_op(f, f, [x])


@pytest.mark.parametrize(
    "kw", [{"min": -0.3}, {"max": 0.4}, {"min": -0.5, "max": 0.25}, {"min": 0.1, "max": 0.1}]
)
@pytest.mark.parametrize("positional", [False, True])
def test_clamp(kw, positional):
    x = np.round(randn((4, 5), seed=10), 2) + 0.005  # avoid exact boundary values
    x = x.astype(np.float32)
    if positional:
        args = (kw.get("min"), kw.get("max"))
        check_op(lambda t: _m(t).clamp(t, *args), lambda t: torch.clamp(t, *args), [x])
    else:
        check_op(lambda t: _m(t).clamp(t, **kw), lambda t: torch.clamp(t, **kw), [x])


def test_clamp_method():
    x = randn((6,), seed=11)
    check_op(
        lambda t: (t * 2).clamp(min=-1.0, max=1.0), lambda t: (t * 2).clamp(min=-1.0, max=1.0), [x]
    )


@pytest.mark.parametrize(
    "sc,sa,sb",
    [
        ((3, 4), (3, 4), (3, 4)),
        ((3, 1), (1, 4), (3, 4)),
        ((4,), (3, 4), ()),
        ((2, 3, 4), (4,), (3, 1)),
    ],
)
def test_where(sc, sa, sb):
    cond = np.random.default_rng(12).random(sc) < 0.5
    a, b = randn(sa, seed=13), randn(sb, seed=14)

    def pf(x, y):
        return phalanx.where(phalanx.tensor(cond), x, y)

    def tf(x, y):
        return torch.where(torch.tensor(cond), x, y)

    check_op(pf, tf, [a, b])


def test_where_with_comparison_condition():
    a = randn((5, 3), seed=15)

    def f(x):
        return _m(x).where(x > 0, x * 2, x.exp())

    check_op(f, f, [a])


CMP = ["eq", "ne", "lt", "le", "gt", "ge"]
CMP_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


@pytest.mark.parametrize("op", CMP)
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 1), (4,)), ((2, 3), ())])
def test_comparisons(op, sa, sb):
    g = np.random.default_rng(16)
    a = g.integers(-2, 3, sa).astype(np.float32)
    b = g.integers(-2, 3, sb).astype(np.float32)
    pa, pb, ta, tb = phalanx.tensor(a), phalanx.tensor(b), torch.tensor(a), torch.tensor(b)
    for po, to in [
        (getattr(phalanx, op)(pa, pb), getattr(torch, op)(ta, tb)),
        (CMP_OPS[op](pa, pb), CMP_OPS[op](ta, tb)),
        (CMP_OPS[op](pa, 1.0), CMP_OPS[op](ta, 1.0)),
        (CMP_OPS[op](pa, 0), CMP_OPS[op](ta, 0)),
    ]:
        assert po.dtype == phalanx.bool
        assert not po.requires_grad
        np.testing.assert_array_equal(to_numpy(po), to.numpy())


def test_comparison_int_float_mix():
    pi, ti = phalanx.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    pf, tf = phalanx.tensor([1.0, 2.5, 2.9]), torch.tensor([1.0, 2.5, 2.9])
    for op in CMP:
        np.testing.assert_array_equal(
            to_numpy(getattr(phalanx, op)(pi, pf)), getattr(torch, op)(ti, tf).numpy()
        )


def test_comparison_of_requires_grad_tensor():
    p = phalanx.tensor(randn((3,)), requires_grad=True)
    r = p > 0
    assert not r.requires_grad and r.dtype == phalanx.bool


# ---------------------------------------------------------------- dtypes & promotion


@pytest.mark.parametrize(
    "expr",
    [
        lambda m, a, b: a + b,
        lambda m, a, b: a * b,
        lambda m, a, b: a - b,
        lambda m, a, b: a / b,
        lambda m, a, b: a + 1,
        lambda m, a, b: a * 2.5,
        lambda m, a, b: a / 2,
        lambda m, a, b: -a,
        lambda m, a, b: m.maximum(a, b),
        lambda m, a, b: a.abs(),
    ],
)
def test_integer_arithmetic_and_promotion(expr):
    ia = np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int64)
    ib = np.array([2, 3, -4], dtype=np.int64)
    po = expr(phalanx, phalanx.tensor(ia), phalanx.tensor(ib))
    to = expr(torch, torch.tensor(ia), torch.tensor(ib))
    assert same_dtype(po.dtype, to.dtype), (po.dtype, to.dtype)
    assert_close(po, to, rtol=1e-6, atol=0)


def test_int_float_tensor_promotion():
    pi, pf = phalanx.tensor([1, 2, 3]), phalanx.tensor([0.5, 0.25, 2.0])
    ti, tf = torch.tensor([1, 2, 3]), torch.tensor([0.5, 0.25, 2.0])
    for f in (lambda a, b: a + b, lambda a, b: a * b, lambda a, b: b - a):
        po, to = f(pi, pf), f(ti, tf)
        assert po.dtype == phalanx.float32
        assert_close(po, to)
    # int32 + int64 -> int64 ; uint8 + int64 scalar stays uint8 in torch
    a = phalanx.tensor([1, 2], dtype=phalanx.int32) + phalanx.tensor([3, 4])
    assert a.dtype == phalanx.int64 and a.tolist() == [4, 6]
    u = phalanx.tensor([250, 3], dtype=phalanx.uint8) + 1
    assert u.dtype == phalanx.uint8


def test_half_arithmetic():
    a = randn((8,), seed=30)
    b = randn((8,), seed=31)
    pa, pb = phalanx.tensor(a).half(), phalanx.tensor(b).half()
    ta, tb = torch.tensor(a).half(), torch.tensor(b).half()
    for f in (lambda x, y: x + y, lambda x, y: x * y):
        po, to = f(pa, pb), f(ta, tb)
        assert po.dtype == phalanx.float16
        assert_close(po.float(), to.float(), rtol=1e-3, atol=1e-3)
    mix = pa + phalanx.tensor(b)
    assert mix.dtype == phalanx.float32


# ---------------------------------------------------------------- in-place

INPLACE = [
    ("add_", lambda x, o: x.add_(o)),
    ("sub_", lambda x, o: x.sub_(o)),
    ("mul_", lambda x, o: x.mul_(o)),
    ("div_", lambda x, o: x.div_(o)),
    ("iadd", lambda x, o: x.__iadd__(o)),
    ("isub", lambda x, o: x.__isub__(o)),
    ("imul", lambda x, o: x.__imul__(o)),
    ("itruediv", lambda x, o: x.__itruediv__(o)),
]


@pytest.mark.parametrize("name,fn", INPLACE, ids=[c[0] for c in INPLACE])
@pytest.mark.parametrize("other", ["scalar", "same", "broadcast"])
def test_inplace_values_and_version(name, fn, other):
    x = randn((3, 4), seed=40)
    o = {
        "scalar": 1.75,
        "same": away_from_zero((3, 4), seed=41, margin=0.5),
        "broadcast": away_from_zero((4,), seed=42, margin=0.5),
    }[other]
    p, t = phalanx.tensor(x), torch.tensor(x)
    po = phalanx.tensor(o) if isinstance(o, np.ndarray) else o
    to = torch.tensor(o) if isinstance(o, np.ndarray) else o
    v0 = p._version
    r = fn(p, po)
    fn(t, to)
    assert_close(p, t)
    assert p._version == v0 + 1
    # returns the same tensor (aliasing)
    r[0, 0] = 123.0
    assert p[0, 0].item() == 123.0


@pytest.mark.parametrize("name,fn", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_autograd_on_nonleaf(name, fn):
    x = randn((3, 4), seed=43)
    o = away_from_zero((4,), seed=44, margin=0.5)
    px, tx = pair(x)
    po, to = pair(o)
    py, ty = px * 1.5, tx * 1.5
    py = fn(py, po)
    ty = fn(ty, to)
    py = py * py
    ty = ty * ty
    g = upstream_grad((3, 4))
    py.backward(phalanx.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(py, ty)
    assert_close(px.grad, tx.grad)
    assert_close(po.grad, to.grad)


def test_other_inplace_ops():
    x = randn((3, 4), seed=45)
    p, t = phalanx.tensor(x), torch.tensor(x)
    v = p._version
    p.clamp_(min=-0.5, max=0.5)
    t.clamp_(min=-0.5, max=0.5)
    assert_close(p, t)
    assert p._version == v + 1
    p.clamp_(max=0.2)
    t.clamp_(max=0.2)
    assert_close(p, t)
    p[1].zero_()
    t[1].zero_()
    assert_close(p, t)
    p[:, 2].fill_(3.5)
    t[:, 2].fill_(3.5)
    assert_close(p, t)
    src = randn((4,), seed=46)
    p[2].copy_(phalanx.tensor(src))
    t[2].copy_(torch.tensor(src))
    assert_close(p, t)
    p.zero_()
    assert (to_numpy(p) == 0).all()
    p.fill_(2)
    assert (to_numpy(p) == 2).all()


def test_copy_broadcast_and_dtype_convert():
    p = phalanx.zeros(2, 3)
    p.copy_(phalanx.tensor([1, 2, 3]))
    t = torch.zeros(2, 3)
    t.copy_(torch.tensor([1, 2, 3]))
    assert_close(p, t)
    p.t().copy_(phalanx.tensor(randn((3, 2), seed=1)))
    t.t().copy_(torch.tensor(randn((3, 2), seed=1)))
    assert_close(p, t)


def test_clamp_inplace_autograd():
    x = randn((5,), seed=47)
    px, tx = pair(x)
    py, ty = px * 2, tx * 2
    py.clamp_(min=-0.5)
    ty.clamp_(min=-0.5)
    (py * py).sum().backward()
    (ty * ty).sum().backward()
    assert_close(px.grad, tx.grad)


def test_copy_autograd():
    x, s = randn((2, 3), seed=48), randn((3,), seed=49)
    px, tx = pair(x)
    ps, ts = pair(s)
    py, ty = px * 1, tx * 1
    py[0].copy_(ps * 2)
    ty[0].copy_(ts * 2)
    g = upstream_grad((2, 3))
    py.backward(phalanx.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(px.grad, tx.grad)
    assert_close(ps.grad, ts.grad)
