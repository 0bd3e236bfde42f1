"""Tensor basics: factories, metadata, views/strides, indexing, numpy interop,
dtype conversion, RNG determinism."""

import numpy as np
import pytest
from conftest import DTYPE_PAIRS, assert_close, pair, randn, same_dtype, to_numpy

import phalanx

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- dtypes


def test_dtype_aliases():
    assert phalanx.float == phalanx.float32
    assert phalanx.half == phalanx.float16
    assert phalanx.long == phalanx.int64
    assert phalanx.int == phalanx.int32
    names = [
        phalanx.float32,
        phalanx.float16,
        phalanx.bfloat16,
        phalanx.int64,
        phalanx.int32,
        phalanx.uint8,
        phalanx.bool,
    ]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert (a == b) == (i == j)


@pytest.mark.parametrize(
    "data",
    [
        [1, 2, 3],
        [1.5, -2.0],
        [[1, 2], [3, 4]],
        [True, False, True],
        3.25,
        7,
        [[1.0, 2.0, 3.0]],
    ],
)
def test_tensor_from_python_infers_dtype(data):
    p = phalanx.tensor(data)
    t = torch.tensor(data)
    assert same_dtype(p.dtype, t.dtype), (p.dtype, t.dtype)
    assert tuple(p.shape) == tuple(t.shape)
    assert p.tolist() == t.tolist()


@pytest.mark.parametrize("name", [p for p, _ in DTYPE_PAIRS if p != "bfloat16"])
def test_tensor_from_numpy_array_keeps_dtype(name):
    arr = (np.arange(6).reshape(2, 3) % 3).astype(name if name != "bool" else np.bool_)
    p = phalanx.tensor(arr)
    t = torch.tensor(arr)
    assert same_dtype(p.dtype, t.dtype)
    np.testing.assert_array_equal(to_numpy(p), arr)


@pytest.mark.parametrize(
    "name", ["float32", "float16", "bfloat16", "int64", "int32", "uint8", "bool"]
)
def test_tensor_explicit_dtype(name):
    data = [[0, 1, 2], [3, 0, 5]]
    p = phalanx.tensor(data, dtype=getattr(phalanx, name))
    t = torch.tensor(data, dtype=getattr(torch, name))
    assert p.dtype == getattr(phalanx, name)
    assert p.tolist() == t.tolist()


def test_tensor_copies_input():
    arr = np.ones((2, 2), dtype=np.float32)
    p = phalanx.tensor(arr)
    arr[0, 0] = 5
    assert p[0, 0].item() == 1.0


# ---------------------------------------------------------------- factories


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("size", [(3,), (2, 3), (1, 4, 1), (0, 2), ()])
def test_zeros_ones_empty(fn, size):
    p1 = getattr(phalanx, fn)(*size)
    p2 = getattr(phalanx, fn)(size)
    t = getattr(torch, fn)(size)  # torch needs the tuple form for 0-d
    for p in (p1, p2):
        assert tuple(p.shape) == tuple(t.shape)
        assert p.dtype == phalanx.float32
        if fn != "empty":
            assert_close(p, t)


@pytest.mark.parametrize("dt", ["float32", "int64", "int32", "uint8", "bool", "float16"])
def test_zeros_ones_dtype(dt):
    p = phalanx.ones(2, 3, dtype=getattr(phalanx, dt))
    t = torch.ones(2, 3, dtype=getattr(torch, dt))
    assert p.dtype == getattr(phalanx, dt)
    assert p.tolist() == t.tolist()
    z = phalanx.zeros(2, dtype=getattr(phalanx, dt))
    assert z.tolist() == torch.zeros(2, dtype=getattr(torch, dt)).tolist()


def test_full_dtype_none_keyword():
    p = phalanx.full((2,), 1.5, dtype=None)
    assert p.dtype == phalanx.float32 and p.tolist() == [1.5, 1.5]


def test_factory_requires_grad():
    for fn in (phalanx.zeros, phalanx.ones):
        p = fn(2, 2, requires_grad=True)
        assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert phalanx.full((2,), 1.0, requires_grad=True).requires_grad


@pytest.mark.parametrize(
    "size,val,dtype",
    [
        ((2, 3), 1.5, None),
        ((4,), 7, None),
        ((2, 2), True, None),
        ((3,), 2, "float32"),
        ((1, 2), -3.0, "int64"),
    ],
)
def test_full(size, val, dtype):
    if dtype is None:  # dtype inferred from the fill value, as torch does
        p, t = phalanx.full(size, val), torch.full(size, val)
    else:
        p = phalanx.full(size, val, dtype=getattr(phalanx, dtype))
        t = torch.full(size, val, dtype=getattr(torch, dtype))
    assert same_dtype(p.dtype, t.dtype), (p.dtype, t.dtype)
    assert p.tolist() == t.tolist()


@pytest.mark.parametrize(
    "args,kw",
    [
        ((5,), {}),
        ((2, 9), {}),
        ((1, 10, 3), {}),
        ((10, 0, -2), {}),
        ((0.0, 1.0, 0.25), {}),
        ((0, 2.5, 0.5), {}),
        ((5,), {"dtype": "float32"}),
        ((-3, 3), {}),
        ((0, 1, 0.1), {}),
    ],
)
def test_arange(args, kw):
    pkw = {k: getattr(phalanx, v) for k, v in kw.items()}
    tkw = {k: getattr(torch, v) for k, v in kw.items()}
    p = phalanx.arange(*args, **pkw)
    t = torch.arange(*args, **tkw)
    assert same_dtype(p.dtype, t.dtype), (p.dtype, t.dtype)
    assert tuple(p.shape) == tuple(t.shape)
    assert_close(p, t, rtol=1e-6, atol=1e-6)


def test_rand_randn_randint_shapes_and_ranges():
    phalanx.manual_seed(3)
    r = phalanx.rand(200, 50)
    assert tuple(r.shape) == (200, 50) and r.dtype == phalanx.float32
    a = to_numpy(r)
    assert a.min() >= 0.0 and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.02
    n = to_numpy(phalanx.randn(200, 50))
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    i = phalanx.randint(-3, 5, (1000,))
    assert i.dtype == phalanx.int64
    ia = to_numpy(i)
    assert ia.min() == -3 and ia.max() == 4
    assert set(np.unique(ia).tolist()) == set(range(-3, 5))
    assert tuple(phalanx.rand((2, 3)).shape) == (2, 3)
    assert tuple(phalanx.randn((4,)).shape) == (4,)


def test_manual_seed_determinism():
    phalanx.manual_seed(0)
    a = phalanx.rand(3)
    b1 = phalanx.randn(2, 2)
    c1 = phalanx.randint(0, 100, (5,))
    phalanx.manual_seed(0)
    b = phalanx.rand(3)
    b2 = phalanx.randn(2, 2)
    c2 = phalanx.randint(0, 100, (5,))
    assert a.tolist() == b.tolist()
    assert b1.tolist() == b2.tolist()
    assert c1.tolist() == c2.tolist()
    phalanx.manual_seed(1)
    assert phalanx.rand(3).tolist() != a.tolist()


def test_generator_independent_of_global():
    phalanx.manual_seed(0)
    a = phalanx.rand(4)
    phalanx.manual_seed(0)
    g = phalanx.Generator()
    g.manual_seed(123)
    _ = phalanx.rand(4, generator=g)
    _ = phalanx.randn(4, generator=g)
    _ = phalanx.randint(0, 10, (3,), generator=g)
    b = phalanx.rand(4)
    assert a.tolist() == b.tolist(), "using a Generator must not advance the global RNG"

    g1 = phalanx.Generator()
    g1.manual_seed(5)
    g2 = phalanx.Generator()
    g2.manual_seed(5)
    x1 = phalanx.rand(6, generator=g1)
    phalanx.rand(6)  # global draw in between
    x2 = phalanx.rand(6, generator=g2)
    assert x1.tolist() == x2.tolist()
    g3 = phalanx.Generator()
    g3.manual_seed(6)
    assert phalanx.rand(6, generator=g3).tolist() != x1.tolist()
    # a generator advances: second draw differs from the first
    assert phalanx.rand(6, generator=g1).tolist() != x1.tolist()


@pytest.mark.parametrize("fn", ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"])
def test_like_factories(fn):
    base = phalanx.tensor(randn((2, 3, 4)))
    out = getattr(phalanx, fn)(base)
    assert tuple(out.shape) == (2, 3, 4)
    assert out.dtype == phalanx.float32
    assert not out.requires_grad
    if fn == "zeros_like":
        assert (to_numpy(out) == 0).all()
    if fn == "ones_like":
        assert (to_numpy(out) == 1).all()
    if fn == "rand_like":
        a = to_numpy(out)
        assert (a >= 0).all() and (a < 1).all()


def test_like_factories_dtype():
    base = phalanx.tensor([[1, 2], [3, 4]])
    assert phalanx.zeros_like(base).dtype == phalanx.int64
    assert phalanx.full_like(base, 7).tolist() == [[7, 7], [7, 7]]
    f = phalanx.full_like(base, 2.5, dtype=phalanx.float32)
    assert f.dtype == phalanx.float32 and f.tolist() == [[2.5, 2.5], [2.5, 2.5]]
    assert phalanx.ones_like(base, dtype=phalanx.float16).dtype == phalanx.float16


# ---------------------------------------------------------------- metadata


def test_metadata():
    arr = randn((2, 3, 5))
    p, t = phalanx.tensor(arr), torch.tensor(arr)
    assert tuple(p.shape) == (2, 3, 5)
    assert tuple(p.size()) == (2, 3, 5)
    assert p.size(1) == 3 and p.size(-1) == 5 and p.size(dim=0) == 2
    assert p.dim() == 3 and p.ndim == 3
    assert p.numel() == 30
    assert tuple(p.stride()) == tuple(t.stride())
    assert p.is_contiguous()
    assert p.dtype == phalanx.float32
    s = phalanx.tensor(np.float32(2.0))
    assert tuple(s.shape) == () and s.dim() == 0 and s.numel() == 1
    assert tuple(p.shape) == tuple(t.shape)
    assert p.shape == (2, 3, 5) and p.size() == (2, 3, 5)  # Size compares equal to a tuple
    assert p.shape[1] == 3 and len(p.shape) == 3 and list(p.shape) == [2, 3, 5]
    assert isinstance(p, phalanx.Tensor)


# ---------------------------------------------------------------- views & strides

VIEW_CASES = [
    ("view", lambda x: x.view(6, 4)),
    ("view_neg", lambda x: x.view(-1, 3)),
    ("view_tuple", lambda x: x.view((4, 6))),
    ("reshape", lambda x: x.reshape(3, 8)),
    ("reshape_tuple", lambda x: x.reshape((2, -1))),
    ("transpose", lambda x: x.transpose(0, 2)),
    ("transpose_neg", lambda x: x.transpose(-1, -2)),
    ("permute", lambda x: x.permute(2, 0, 1)),
    ("permute_tuple", lambda x: x.permute((1, 2, 0))),
    ("flatten", lambda x: x.flatten()),
    ("flatten_1", lambda x: x.flatten(1)),
    ("flatten_0_1", lambda x: x.flatten(0, 1)),
    ("flatten_kw", lambda x: x.flatten(start_dim=1, end_dim=2)),
    ("expand_tuple", lambda x: x[:1].expand((4, 3, 4))),
    ("t_1d", lambda x: x[0, 0].t()),
    ("transpose_t_chain", lambda x: x.permute(1, 2, 0)[1].t().transpose(0, 1)),
    ("unsqueeze0", lambda x: x.unsqueeze(0)),
    ("unsqueeze_neg", lambda x: x.unsqueeze(-1)),
    ("unsqueeze_mid", lambda x: x.unsqueeze(2)),
    ("squeeze_all", lambda x: x.unsqueeze(1).unsqueeze(0).squeeze()),
    ("squeeze_dim", lambda x: x.unsqueeze(1).squeeze(1)),
    ("squeeze_noop", lambda x: x.squeeze(0)),
    ("expand", lambda x: x[:, :1, :].expand(2, 3, 4)),
    ("expand_new_dim", lambda x: x[0].unsqueeze(0).expand(5, 3, 4)),
    ("expand_minus1", lambda x: x[:, :, :1].expand(-1, -1, 6)),
    ("slice", lambda x: x[1:, ::2, 1:3]),
    ("slice_int", lambda x: x[0, 1:]),
    ("slice_neg", lambda x: x[-1, -2:, ::3]),
    ("slice_none", lambda x: x[:, None, 1]),
    ("slice_ellipsis", lambda x: x[..., 2]),
    ("slice_ellipsis_mid", lambda x: x[1, ..., None, 0:2]),
    ("slice_all", lambda x: x[1:3, ::2, None, ..., 0]),
    ("slice_step_transpose", lambda x: x.transpose(0, 1)[::2, :, 1:]),
    ("t", lambda x: x[0].t()),
    ("t_of_slice", lambda x: x[:, 1, ::2].t()),
    ("slice_empty", lambda x: x[:, 2:2]),
    ("slice_clip", lambda x: x[:, 1:100]),
    ("int_index", lambda x: x[1]),
    ("int_neg_index", lambda x: x[-1, -1]),
]


@pytest.mark.parametrize("name,fn", VIEW_CASES, ids=[c[0] for c in VIEW_CASES])
def test_view_ops_values_shapes_strides(name, fn):
    arr = randn((2, 3, 4), seed=1)
    p, t = phalanx.tensor(arr), torch.tensor(arr)
    po, to = fn(p), fn(t)
    assert tuple(po.shape) == tuple(to.shape)
    assert_close(po, to, rtol=0, atol=0)
    if not name.startswith("reshape"):  # reshape may copy or view; values/shape checked above
        # the stride of a size-1 dimension is never used for addressing; compare the others
        ps = [s for s, n in zip(po.stride(), po.shape) if n != 1]
        ts = [s for s, n in zip(to.stride(), to.shape) if n != 1]
        assert ps == ts, (po.stride(), to.stride())
    assert po.is_contiguous() == to.is_contiguous()


@pytest.mark.parametrize("name,fn", VIEW_CASES, ids=[c[0] for c in VIEW_CASES])
def test_view_ops_gradients(name, fn):
    arr = randn((2, 3, 4), seed=2)
    p, t = pair(arr)
    po, to = fn(p), fn(t)
    g = randn(tuple(to.shape), seed=3)
    (po * phalanx.tensor(g)).sum().backward()
    (to * torch.tensor(g)).sum().backward()
    assert_close(p.grad, t.grad, rtol=1e-6, atol=1e-6)


def test_view_shares_storage():
    base = phalanx.zeros(2, 6)
    v = base.view(3, 4)
    v[1, 1] = 5.0
    assert base[0, 5].item() == 5.0
    tr = base.t()
    tr[2, 1] = -1.0
    assert base[1, 2].item() == -1.0
    s = base[:, ::2]
    s.fill_(3.0)
    ref = torch.zeros(2, 6)
    ref.view(3, 4)[1, 1] = 5.0
    ref.t()[2, 1] = -1.0
    ref[:, ::2].fill_(3.0)
    assert_close(base, ref, rtol=0, atol=0)
    pe = base.permute(1, 0)
    pe.mul_(2)
    ref.permute(1, 0).mul_(2)
    assert_close(base, ref, rtol=0, atol=0)


def test_reshape_view_vs_copy():
    base = phalanx.zeros(2, 6)
    r = base.reshape(12)  # contiguous -> view
    r[0] = 1.0
    assert base[0, 0].item() == 1.0
    tb = base.t()
    rc = tb.reshape(12)  # non-contiguous -> copy
    assert rc.is_contiguous()
    tref = torch.zeros(2, 6)
    tref[0, 0] = 1
    assert_close(rc, tref.t().reshape(12), rtol=0, atol=0)


def test_expand_stride_zero():
    p = phalanx.tensor(randn((3, 1)))
    e = p.expand(3, 4)
    t = torch.tensor(randn((3, 1))).expand(3, 4)
    assert tuple(e.stride()) == tuple(t.stride())
    assert e.stride()[1] == 0
    e2 = phalanx.tensor(randn((4,))).expand(2, 3, 4)
    assert tuple(e2.stride()) == (0, 0, 1)
    assert not e.is_contiguous()


def test_contiguous_copies():
    arr = randn((3, 4), seed=5)
    p = phalanx.tensor(arr)
    tr = p.t()
    assert not tr.is_contiguous()
    c = tr.contiguous()
    assert c.is_contiguous()
    assert tuple(c.stride()) == (3, 1)
    assert_close(c, arr.T, rtol=0, atol=0)
    c[0, 0] = 100.0
    assert p[0, 0].item() == arr[0, 0]
    # contiguous of an expanded tensor materializes it
    e = phalanx.tensor(arr[:, :1]).expand(3, 5).contiguous()
    assert tuple(e.stride()) == (5, 1)
    assert_close(e, np.broadcast_to(arr[:, :1], (3, 5)), rtol=0, atol=0)


def test_clone_and_detach():
    arr = randn((2, 3))
    p = phalanx.tensor(arr, requires_grad=True)
    c = p.clone()
    assert c.requires_grad and not c.is_leaf and c.grad_fn is not None
    d = p.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    with phalanx.no_grad():
        c2 = p.clone()
    c2[0, 0] = 42.0
    assert p[0, 0].item() == arr[0, 0]
    d[0, 1] = 7.0  # detach shares storage
    assert p[0, 1].item() == 7.0


# ---------------------------------------------------------------- setitem / indexing

SETITEM_CASES = [
    ("scalar_row", lambda x, T: x.__setitem__(1, 5.0)),
    ("scalar_elem", lambda x, T: x.__setitem__((0, 2), -1.5)),
    ("scalar_slice", lambda x, T: x.__setitem__((slice(None), slice(1, 3)), 2.0)),
    ("scalar_step", lambda x, T: x.__setitem__((slice(None, None, 2), slice(None, None, 3)), 9.0)),
    (
        "tensor_block",
        lambda x, T: x.__setitem__(
            (slice(0, 2), slice(1, 3)), T(np.arange(4, dtype=np.float32).reshape(2, 2))
        ),
    ),
    (
        "tensor_broadcast_row",
        lambda x, T: x.__setitem__((slice(None), slice(0, 4)), T(np.arange(4, dtype=np.float32))),
    ),
    (
        "tensor_broadcast_col",
        lambda x, T: x.__setitem__(slice(None), T(np.ones((3, 1), np.float32) * 3)),
    ),
    ("ellipsis", lambda x, T: x.__setitem__((Ellipsis, 0), 4.0)),
    ("int_value", lambda x, T: x.__setitem__((2, 4), 3)),
]


@pytest.mark.parametrize("name,fn", SETITEM_CASES, ids=[c[0] for c in SETITEM_CASES])
def test_setitem(name, fn):
    arr = randn((3, 5), seed=9)
    p, t = phalanx.tensor(arr), torch.tensor(arr)
    v0 = p._version
    fn(p, phalanx.tensor)
    fn(t, torch.tensor)
    assert_close(p, t, rtol=0, atol=0)
    assert p._version > v0


def test_setitem_autograd_nonleaf():
    arr = randn((3, 4), seed=4)
    src = randn((2,), seed=5)
    p, t = pair(arr)
    ps, ts = pair(src)
    py, ty = p * 2, t * 2
    py[1, 1:3] = ps
    ty[1, 1:3] = ts
    g = randn((3, 4), seed=6)
    (py * phalanx.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    assert_close(py, ty)
    assert_close(p.grad, t.grad)
    assert_close(ps.grad, ts.grad)


@pytest.mark.parametrize("idx", [[2, 0, 2], [1], [-1, 0], [0, 1, 2, 3, 3]])
def test_integer_tensor_index_dim0(idx):
    arr = randn((4, 3), seed=11)
    p, t = pair(arr)
    ip = phalanx.tensor(idx)
    it = torch.tensor(idx)
    po, to = p[ip], t[it]
    assert_close(po, to, rtol=0, atol=0)
    g = randn(tuple(to.shape), seed=12)
    po.backward(phalanx.tensor(g))
    to.backward(torch.tensor(g))
    assert_close(p.grad, t.grad, rtol=1e-6, atol=1e-6)


def test_integer_tensor_index_other_dim():
    arr = randn((3, 5), seed=13)
    p, t = pair(arr)
    ip, it = phalanx.tensor([4, 0, 4]), torch.tensor([4, 0, 4])
    po, to = p[:, ip], t[:, it]
    assert_close(po, to, rtol=0, atol=0)
    g = randn(tuple(to.shape), seed=14)
    po.backward(phalanx.tensor(g))
    to.backward(torch.tensor(g))
    assert_close(p.grad, t.grad, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- scalars, lists, repr


def test_item_and_tolist():
    f = phalanx.tensor([[1.5, 2.0], [3.0, -4.25]])
    assert f.tolist() == [[1.5, 2.0], [3.0, -4.25]]
    v = f[1, 1].item()
    assert isinstance(v, float) and v == -4.25
    i = phalanx.tensor([3, 4])
    assert isinstance(i[0].item(), int) and i[1].item() == 4
    b = phalanx.tensor([True, False])
    assert b[0].item() is True and b.tolist() == [True, False]
    assert phalanx.tensor(2.5).item() == 2.5
    assert phalanx.tensor(2.5).tolist() == 2.5
    assert phalanx.tensor([[5.0]]).item() == 5.0
    arr = randn((2, 3, 2))
    assert phalanx.tensor(arr).tolist() == torch.tensor(arr).tolist()


def test_repr():
    p = phalanx.tensor([1.5, -2.25, 3.0])
    r = repr(p)
    assert "1.5" in r and "-2.25" in r and "3." in r
    assert "requires_grad" not in r
    q = phalanx.tensor([0.5, 7.0], requires_grad=True)
    rq = repr(q)
    assert "requires_grad=True" in rq and "0.5" in rq and "7." in rq
    ri = repr(phalanx.tensor([11, 22]))
    assert "11" in ri and "22" in ri


# ---------------------------------------------------------------- numpy interop


@pytest.mark.parametrize("npdt", [np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_])
def test_from_numpy_zero_copy(npdt):
    arr = (np.arange(12).reshape(3, 4) % 5).astype(npdt)
    p = phalanx.from_numpy(arr)
    assert same_dtype(p.dtype, torch.from_numpy(arr).dtype)
    np.testing.assert_array_equal(p.numpy(), arr)
    arr[1, 2] = 1 if npdt is np.bool_ else 3
    arr[0, 0] = 0 if npdt is np.bool_ else 4
    assert p[1, 2].item() == arr[1, 2].item()
    assert p[0, 0].item() == arr[0, 0].item()


def test_from_numpy_noncontiguous_positive_strides():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    arr = base[:, ::2]
    p = phalanx.from_numpy(arr)
    t = torch.from_numpy(arr)
    assert tuple(p.stride()) == tuple(t.stride())
    np.testing.assert_array_equal(p.numpy(), arr)
    base[1, 2] = -9
    assert p[1, 1].item() == -9
    pt = phalanx.from_numpy(base.T)
    assert tuple(pt.stride()) == (1, 6)
    np.testing.assert_array_equal(to_numpy(pt), base.T)


def test_numpy_shares_memory():
    p = phalanx.zeros(2, 3)
    n = p.numpy()
    n[1, 1] = -5.0
    assert p[1, 1].item() == -5.0
    p[0, 2] = 8.0
    assert n[0, 2] == 8.0
    a = np.asarray(p)
    assert a.shape == (2, 3)
    assert np.shares_memory(a, n)
    np.testing.assert_array_equal(a, n)


def test_numpy_of_view_has_strides():
    arr = randn((3, 4))
    p = phalanx.tensor(arr)
    n = p.t().numpy()
    np.testing.assert_array_equal(n, arr.T)
    n[0, 1] = 99.0
    assert p[1, 0].item() == 99.0


def test_numpy_0d():
    n = phalanx.tensor(3.5).numpy()
    assert n.shape == () and float(n) == 3.5


# ---------------------------------------------------------------- dtype conversion


def test_float16_rounding_matches_torch():
    arr = np.concatenate(
        [
            randn((200,), seed=21) * 1000,
            randn((200,), seed=22) * 1e-3,
            np.array([65504.0, 70000.0, 1e-8, -3.14159265, 2049.0, 2051.0], np.float32),
        ]
    ).astype(np.float32)
    p = phalanx.tensor(arr).half()
    t = torch.tensor(arr).half()
    assert p.dtype == phalanx.float16
    np.testing.assert_array_equal(p.numpy(), t.numpy())
    np.testing.assert_array_equal(to_numpy(p.float()), t.float().numpy())
    np.testing.assert_array_equal(to_numpy(phalanx.tensor(arr).to(phalanx.float16)), t.numpy())


def test_bfloat16_rounding_matches_torch():
    arr = np.concatenate(
        [
            randn((300,), seed=23) * 100,
            np.array([1.0 + 2**-8, 1.0 + 3 * 2**-8, 3e38, -1e-30, 0.1], np.float32),
        ]
    ).astype(np.float32)
    p = phalanx.tensor(arr).bfloat16()
    t = torch.tensor(arr).bfloat16()
    assert p.dtype == phalanx.bfloat16
    np.testing.assert_array_equal(to_numpy(p.float()), t.float().numpy())
    assert p.tolist() == t.tolist()
    p2 = phalanx.tensor(arr).to(phalanx.bfloat16)
    np.testing.assert_array_equal(to_numpy(p2.float()), t.float().numpy())


@pytest.mark.parametrize(
    "src,dst",
    [
        ("float32", "int64"),
        ("float32", "int32"),
        ("float32", "bool"),
        ("float32", "uint8"),
        ("int64", "float32"),
        ("int64", "float16"),
        ("bool", "float32"),
        ("int32", "int64"),
        ("uint8", "float32"),
        ("float16", "float32"),
        ("bfloat16", "float32"),
        ("int64", "bool"),
        ("float32", "float32"),
    ],
)
def test_to_dtype(src, dst):
    vals = np.array([-2.7, -1.2, 0.0, 0.4, 1.6, 3.5, 7.9, 100.25], dtype=np.float32)
    if src in ("uint8",):
        vals = np.abs(vals)
    if dst == "uint8":
        vals = np.abs(vals)
    t = torch.tensor(vals).to(getattr(torch, src))
    p = phalanx.tensor(vals).to(getattr(phalanx, src))
    assert p.tolist() == t.tolist()
    po = p.to(getattr(phalanx, dst))
    to = t.to(getattr(torch, dst))
    assert po.dtype == getattr(phalanx, dst)
    assert po.tolist() == to.tolist()


def test_shortcut_conversions():
    vals = [[-1.7, 2.2], [0.0, 5.5]]
    p, t = phalanx.tensor(vals), torch.tensor(vals)
    assert p.long().dtype == phalanx.int64 and p.long().tolist() == t.long().tolist()
    assert p.long().float().dtype == phalanx.float32
    assert p.long().float().tolist() == t.long().float().tolist()
    assert p.half().tolist() == t.half().tolist()
    assert p.bfloat16().tolist() == t.bfloat16().tolist()


def test_conversion_gradient():
    arr = randn((5,), seed=3)
    p, t = pair(arr)
    (p.half().float() * 3).sum().backward()
    (t.half().float() * 3).sum().backward()
    assert_close(p.grad, t.grad)
