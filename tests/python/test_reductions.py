"""Reductions (sum/mean/max/min/argmax), matmul, cat/stack: forward and gradients."""

import numpy as np
import pytest
from conftest import assert_close, check_op, pair, randn, same_dtype, to_numpy, upstream_grad

import phalanx

torch = pytest.importorskip("torch")


def _m(x):
    return phalanx if isinstance(x, phalanx.Tensor) else torch


SHAPES = [(5,), (3, 4), (2, 3, 5), (1, 3, 1, 4)]


def _dims_for(shape):
    nd = len(shape)
    dims = [None] + list(range(nd)) + [-1]
    if nd >= 2:
        dims += [(0, 1), (-1, 0)]
    if nd >= 3:
        dims += [(0, 2), (0, 1, 2)]
    return dims


SUM_CASES = [
    (s, d, k) for s in SHAPES for d in _dims_for(s) for k in (False, True) if not (d is None and k)
]


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize(
    "shape,dim,keepdim", SUM_CASES, ids=[f"{s}-{d}-{k}" for s, d, k in SUM_CASES]
)
def test_sum_mean(op, shape, dim, keepdim):
    x = randn(shape, seed=len(shape))
    if dim is None:
        check_op(lambda t: getattr(_m(t), op)(t), lambda t: getattr(torch, op)(t), [x])
        check_op(lambda t: getattr(t, op)(), lambda t: getattr(t, op)(), [x])
    else:
        check_op(
            lambda t: getattr(_m(t), op)(t, dim=dim, keepdim=keepdim),
            lambda t: getattr(torch, op)(t, dim=dim, keepdim=keepdim),
            [x],
        )
        check_op(
            lambda t: getattr(t, op)(dim, keepdim), lambda t: getattr(t, op)(dim, keepdim), [x]
        )


def test_sum_positional_dim_list():
    x = randn((2, 3, 4), seed=3)
    check_op(lambda t: t.sum([0, 2]), lambda t: t.sum([0, 2]), [x])
    check_op(lambda t: _m(t).mean(t, [1, 2], True), lambda t: torch.mean(t, [1, 2], True), [x])


def test_sum_of_noncontiguous():
    x = randn((4, 6), seed=4)

    def f(t):
        return t.t()[::2].sum(1)

    check_op(f, f, [x])

    def g(t):
        return t[:, :1].expand(4, 5).mean(0)

    check_op(g, g, [x])


def test_sum_int_dtypes():
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    for dt in (np.int64, np.int32, np.uint8, np.bool_):
        arr = a.astype(dt)
        po, to = phalanx.tensor(arr).sum(), torch.tensor(arr).sum()
        assert same_dtype(po.dtype, to.dtype), (dt, po.dtype, to.dtype)
        assert po.item() == to.item()
        po, to = phalanx.tensor(arr).sum(1), torch.tensor(arr).sum(1)
        assert po.tolist() == to.tolist()


def test_mean_large_accumulation():
    x = np.full((1000, 100), 0.1, dtype=np.float32) + randn((1000, 100), seed=5) * 1e-3
    check_op(lambda t: t.mean(), lambda t: t.mean(), [x], rtol=1e-5)
    check_op(lambda t: t.sum(0), lambda t: t.sum(0), [x], rtol=1e-5, atol=1e-4)


MAX_CASES = [
    (s, d, k)
    for s in SHAPES
    for d in [None] + list(range(len(s))) + [-1]
    for k in (False, True)
    if not (d is None and k)
]


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize(
    "shape,dim,keepdim", MAX_CASES, ids=[f"{s}-{d}-{k}" for s, d, k in MAX_CASES]
)
def test_max_min(op, shape, dim, keepdim):
    x = randn(shape, seed=10 + len(shape))  # continuous values: no ties
    if dim is None:
        po = check_op(lambda t: getattr(_m(t), op)(t), lambda t: getattr(torch, op)(t), [x])[0]
        assert tuple(po.shape) == ()
        check_op(lambda t: getattr(t, op)(), lambda t: getattr(t, op)(), [x])
        return
    px, tx = pair(x)
    pr = getattr(phalanx, op)(px, dim=dim, keepdim=keepdim)
    tr = getattr(torch, op)(tx, dim=dim, keepdim=keepdim)
    pv, pi = pr  # tuple unpacking
    assert_close(pr.values, tr.values, rtol=0, atol=0)
    assert_close(pv, tr.values, rtol=0, atol=0)
    assert pi.dtype == phalanx.int64
    np.testing.assert_array_equal(to_numpy(pr.indices), tr.indices.numpy())
    np.testing.assert_array_equal(to_numpy(pr[1]), tr.indices.numpy())
    g = upstream_grad(tuple(tr.values.shape))
    pr.values.backward(phalanx.tensor(g))
    tr.values.backward(torch.tensor(g))
    assert_close(px.grad, tx.grad, rtol=0, atol=0)
    # method form, positional
    mv, mi = getattr(phalanx.tensor(x), op)(dim, keepdim)
    np.testing.assert_array_equal(to_numpy(mi), tr.indices.numpy())


def test_max_int_tensor():
    a = np.array([[3, 9, -1], [7, 2, 8]], dtype=np.int64)
    p, t = phalanx.tensor(a), torch.tensor(a)
    assert p.max().item() == t.max().item() and p.min().item() == t.min().item()
    assert p.max().dtype == phalanx.int64
    v, i = p.max(1)
    assert v.tolist() == t.max(1).values.tolist() and i.tolist() == t.max(1).indices.tolist()


ARGMAX_CASES = [
    (s, d, k) for s in SHAPES for d in [None] + list(range(len(s))) + [-1] for k in (False, True)
]


@pytest.mark.parametrize(
    "shape,dim,keepdim", ARGMAX_CASES, ids=[f"{s}-{d}-{k}" for s, d, k in ARGMAX_CASES]
)
def test_argmax(shape, dim, keepdim):
    x = randn(shape, seed=20 + len(shape))
    po = phalanx.argmax(phalanx.tensor(x), dim=dim, keepdim=keepdim)
    to = torch.argmax(torch.tensor(x), dim=dim, keepdim=keepdim)
    assert po.dtype == phalanx.int64
    assert tuple(po.shape) == tuple(to.shape)
    np.testing.assert_array_equal(to_numpy(po), to.numpy())
    if dim is not None:
        pm = phalanx.tensor(x).argmax(dim, keepdim)
        np.testing.assert_array_equal(to_numpy(pm), to.numpy())


def test_argmax_noncontiguous_and_default():
    x = randn((4, 5), seed=30)
    p, t = phalanx.tensor(x), torch.tensor(x)
    assert p.argmax().item() == t.argmax().item()
    np.testing.assert_array_equal(to_numpy(p.t().argmax(1)), t.t().argmax(1).numpy())
    np.testing.assert_array_equal(to_numpy(p[:, ::2].argmax(0)), t[:, ::2].argmax(0).numpy())


def test_reductions_on_view_gradient():
    x = randn((3, 4, 5), seed=31)

    def f(t):
        return t.permute(2, 0, 1)[1:4].max(-1)[0].sum(0) + t.mean((0, 2))[:1]

    check_op(f, f, [x])


# ---------------------------------------------------------------- matmul

MATMUL_SHAPES = [
    ((4,), (4,)),
    ((3, 4), (4,)),
    ((4,), (4, 5)),
    ((3, 4), (4, 5)),
    ((1, 1), (1, 1)),
    ((1, 7), (7, 1)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
    ((1, 3, 4), (6, 4, 2)),
    ((17, 33), (33, 9)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul(sa, sb):
    a, b = randn(sa, seed=40), randn(sb, seed=41)
    check_op(phalanx.matmul, torch.matmul, [a, b], rtol=1e-4, atol=1e-4)
    check_op(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], rtol=1e-4, atol=1e-4)
    check_op(lambda x, y: x.matmul(y), lambda x, y: x.matmul(y), [a, b], rtol=1e-4, atol=1e-4)


def test_matmul_transposed_views():
    a, b = randn((4, 3), seed=42), randn((5, 4), seed=43)

    def f(x, y):
        return x.t() @ y.t()

    check_op(f, f, [a, b], rtol=1e-4, atol=1e-4)
    c = randn((2, 4, 3), seed=44)

    def g(x, y):
        return x.transpose(1, 2) @ y[1:].t()

    check_op(g, g, [c, b], rtol=1e-4, atol=1e-4)


def test_matmul_one_side_requires_grad():
    a, b = randn((3, 4), seed=45), randn((4, 2), seed=46)
    check_op(phalanx.matmul, torch.matmul, [a, b], requires_grad=[False, True])
    check_op(phalanx.matmul, torch.matmul, [a, b], requires_grad=[True, False])


# ---------------------------------------------------------------- cat / stack

CAT_CASES = [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 1), (2, 5)], 1),
    ([(2, 3), (2, 4)], -1),
    ([(1, 2, 3), (1, 2, 3), (1, 2, 3)], 2),
    ([(3,), (1,)], 0),
    ([(2, 3)], 0),
    ([(2, 0), (2, 3)], 1),
]


@pytest.mark.parametrize("shapes,dim", CAT_CASES, ids=[f"{s}-{d}" for s, d in CAT_CASES])
def test_cat(shapes, dim):
    arrs = [randn(s, seed=50 + i) for i, s in enumerate(shapes)]
    check_op(
        lambda *ts: phalanx.cat(list(ts), dim=dim), lambda *ts: torch.cat(list(ts), dim=dim), arrs
    )
    check_op(lambda *ts: phalanx.cat(tuple(ts), dim), lambda *ts: torch.cat(tuple(ts), dim), arrs)


def test_cat_default_dim_and_views():
    a, b = randn((4, 6), seed=60), randn((3, 3), seed=61)

    def f(x, y):
        return _m(x).cat([x.t()[::2].t(), y[1:]])

    check_op(f, f, [a, b])


STACK_CASES = [
    ((3,), 0),
    ((3,), 1),
    ((3,), -1),
    ((2, 3), 0),
    ((2, 3), 1),
    ((2, 3), 2),
    ((2, 3), -2),
]


@pytest.mark.parametrize("shape,dim", STACK_CASES, ids=[f"{s}-{d}" for s, d in STACK_CASES])
@pytest.mark.parametrize("n", [1, 3])
def test_stack(shape, dim, n):
    arrs = [randn(shape, seed=70 + i) for i in range(n)]
    check_op(
        lambda *ts: phalanx.stack(list(ts), dim=dim),
        lambda *ts: torch.stack(list(ts), dim=dim),
        arrs,
    )


def test_stack_default_dim():
    arrs = [randn((2, 2), seed=80), randn((2, 2), seed=81)]
    check_op(lambda *ts: phalanx.stack(ts), lambda *ts: torch.stack(ts), arrs)


def test_cat_int_tensors():
    a = phalanx.cat([phalanx.tensor([1, 2]), phalanx.tensor([3])])
    assert a.dtype == phalanx.int64 and a.tolist() == [1, 2, 3]
