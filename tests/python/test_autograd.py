"""Autograd engine: finite-difference checks of composite graphs, comparison with
torch, and autograd semantics (accumulation, retain_graph, version counters,
hooks, grad mode, leaf/non-leaf)."""

import numpy as np
import pytest
from conftest import (
    assert_close,
    check_op,
    numeric_gradcheck,
    pair,
    randn,
    to_numpy,
    uniform,
    upstream_grad,
)

import phalanx
import phalanx.nn.functional as F

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402


def _m(x):
    return phalanx if isinstance(x, phalanx.Tensor) else torch


def _F(x):
    return F if isinstance(x, phalanx.Tensor) else TF


# ---------------------------------------------------------------- composite graphs

COMPOSITES = [
    ("log_of_ratio", lambda x, y: ((x * y).exp().sum(1) / (x.abs() + 1).sqrt().mean()).log()),
    ("reuse_branches", lambda x, y: x * x + x.exp() * y - (x / (y.abs() + 0.5)) * x),
    ("views_in_graph", lambda x, y: (x.t()[1:, ::2] * y.t()[:-1, ::2]).sum(0) + x[0, 1:3].sum()),
    ("matmul_chain", lambda x, y: _F(x).tanh(x @ y.t()).sum(-1) * x.sum(1)),
    (
        "expand_permute",
        lambda x, y: (
            (x.unsqueeze(0).expand(2, 3, 4) * y.unsqueeze(0)).permute(2, 1, 0).flatten(1).mean(1)
        ),
    ),
    ("softmax_mix", lambda x, y: _F(x).softmax(x * y, dim=1) * _F(x).log_softmax(y, dim=0)),
    (
        "cat_stack",
        lambda x, y: _m(x).cat([x, y * 2], 0).sum(0) + _m(x).stack([x, y], 2).max(2)[0].sum(0),
    ),
    ("where_clamp", lambda x, y: _m(x).where(x > y, x.clamp(min=-0.2), y.clamp(max=0.3)) * x),
    ("maxmin_reduce", lambda x, y: x.max(1)[0] * y.min(0)[0][:3] + (x - y).abs().max()),
    ("pow_sqrt", lambda x, y: ((x * x + y * y + 0.1).sqrt() ** 1.5).reshape(2, 6).sum(0)),
    ("activations", lambda x, y: _F(x).sigmoid(x) * _F(x).tanh(y) + _F(x).gelu(x * y)),
    ("inplace_nonleaf", lambda x, y: _inplace_graph(x, y)),
    ("setitem_nonleaf", lambda x, y: _setitem_graph(x, y)),
    ("diamond_deep", lambda x, y: _diamond(x, y)),
]


def _inplace_graph(x, y):
    z = x * 1.5
    z.add_(y)
    z.mul_(y.abs() + 0.5)
    return z.exp().sum(0)


def _setitem_graph(x, y):
    z = x.clone()
    z[1] = y[0] * 3
    z[:, 0] = 0.0
    return (z * x).sum(1)


def _diamond(x, y):
    a = x * y
    b = a.exp()
    c = a * a
    d = b + c
    for _ in range(3):
        d = d * 0.5 + a
    return d.mean(0)


@pytest.mark.parametrize("name,fn", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_composite_vs_torch(name, fn):
    x = uniform((3, 4), seed=1, low=-1.0, high=1.0)
    y = uniform((3, 4), seed=2, low=-1.0, high=1.0)
    check_op(fn, fn, [x, y], rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name,fn", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_composite_finite_difference(name, fn):
    # pick inputs whose kinks (ties in max/min/where, clamp bounds, abs at 0) are
    # farther than the finite-difference step from every input
    for seed in range(3, 5000):
        x = uniform((3, 4), seed=seed, low=-1.0, high=1.0)
        y = uniform((3, 4), seed=seed + 1000, low=-1.0, high=1.0)
        if _far_from_kinks(x, y):
            break
    else:
        raise AssertionError("no suitable inputs found")
    numeric_gradcheck(fn, [x, y])


def _top_gap(v, largest=True):
    v = np.sort(np.asarray(v, np.float64).ravel())
    if v.size < 2:
        return np.inf
    return v[-1] - v[-2] if largest else v[1] - v[0]


def _far_from_kinks(x, y, m=0.03):
    d = x - y
    checks = [
        np.abs(d).min(),
        np.abs(x).min(),
        np.abs(y).min(),
        np.abs(x + 0.2).min(),
        np.abs(y - 0.3).min(),
        _top_gap(np.abs(d)),
        min(_top_gap(r) for r in x),
        min(_top_gap(c, largest=False) for c in y.T),
    ]
    return min(checks) > m


def test_finite_difference_nn_ops():
    x = randn((2, 2, 5, 5), seed=5)
    w = randn((3, 2, 3, 3), seed=6) * 0.3
    b = randn((3,), seed=7)
    numeric_gradcheck(
        lambda a, ww, bb: F.avg_pool2d(
            F.sigmoid(F.conv2d(a, ww, bb, padding=1)), 2, ceil_mode=True
        ),
        [x, w, b],
        rtol=5e-2,
        atol=5e-3,
    )
    t = phalanx.tensor([1, 0])
    numeric_gradcheck(lambda a: F.cross_entropy(a, t, label_smoothing=0.1), [randn((2, 3), seed=8)])
    numeric_gradcheck(
        lambda a, ww: F.tanh(F.linear(a, ww)), [randn((3, 4), seed=9), randn((2, 4), seed=10)]
    )


# ---------------------------------------------------------------- semantics


def test_grad_accumulates():
    x = randn((3,), seed=11)
    p, t = pair(x)
    (p * p).sum().backward()
    (p * 3).sum().backward()
    (t * t).sum().backward()
    (t * 3).sum().backward()
    assert_close(p.grad, t.grad)


def test_grad_set_to_none_then_fresh():
    p = phalanx.tensor(randn((3,), seed=12), requires_grad=True)
    (p * 2).sum().backward()
    p.grad = None
    assert p.grad is None
    (p * 5).sum().backward()
    assert_close(p.grad, np.full(3, 5.0, np.float32))


def test_grad_zero_inplace():
    p = phalanx.tensor(randn((3,), seed=12), requires_grad=True)
    (p * 2).sum().backward()
    p.grad.zero_()
    (p * 5).sum().backward()
    assert_close(p.grad, np.full(3, 5.0, np.float32))


def test_backward_twice_without_retain_graph_raises():
    p = phalanx.tensor(randn((3,), seed=13), requires_grad=True)
    y = (p * p).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_backward_twice_with_retain_graph():
    x = randn((3,), seed=14)
    p, t = pair(x)
    py, ty = (p * p).exp().sum(), (t * t).exp().sum()
    py.backward(retain_graph=True)
    py.backward()
    ty.backward(retain_graph=True)
    ty.backward()
    assert_close(p.grad, t.grad)


def test_inplace_modification_of_saved_input_raises():
    p = phalanx.tensor(randn((3,), seed=15), requires_grad=True)
    a = p + 0
    b = a * a  # saves a
    a.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_modification_of_saved_output_raises():
    p = phalanx.tensor(randn((3,), seed=16), requires_grad=True)
    b = p.exp()  # saves its result
    b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_through_view_of_saved_tensor_raises():
    p = phalanx.tensor(randn((2, 3), seed=17), requires_grad=True)
    a = p * 1
    b = a * a
    with phalanx.no_grad():
        a[0].fill_(1.0)  # modifies a through a view: shared version counter
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_nonscalar_backward_without_gradient_raises():
    p = phalanx.tensor(randn((3,), seed=18), requires_grad=True)
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        (p * 2).backward()


def test_backward_with_gradient_argument():
    x = randn((2, 3), seed=19)
    p, t = pair(x)
    g = upstream_grad((2, 3))
    (p.exp() * 2).backward(phalanx.tensor(g))
    (t.exp() * 2).backward(torch.tensor(g))
    assert_close(p.grad, t.grad)
    (p * 3).backward(gradient=phalanx.tensor(g), retain_graph=False)
    (t * 3).backward(gradient=torch.tensor(g), retain_graph=False)
    assert_close(p.grad, t.grad)


def test_backward_on_single_element_nonscalar_shape():
    x = randn((1,), seed=20)
    p, t = pair(x)
    (p * 3).backward(phalanx.tensor(np.ones(1, np.float32)))
    assert_close(p.grad, np.full(1, 3.0, np.float32))


def test_inplace_on_leaf_requiring_grad_raises():
    p = phalanx.tensor(randn((3,), seed=21), requires_grad=True)
    for op in (
        lambda t: t.add_(1),
        lambda t: t.mul_(2),
        lambda t: t.zero_(),
        lambda t: t.fill_(1.0),
        lambda t: t.__iadd__(1.0),
        lambda t: t.clamp_(min=0),
    ):
        with pytest.raises(RuntimeError):
            op(p)


def test_setitem_on_leaf_requiring_grad_raises():
    p = phalanx.tensor(randn((3,), seed=22), requires_grad=True)
    with pytest.raises(RuntimeError):
        p[0] = 1.0


def test_inplace_on_leaf_allowed_under_no_grad():
    x = randn((3,), seed=23)
    p = phalanx.tensor(x, requires_grad=True)
    v = p._version
    with phalanx.no_grad():
        p.add_(1.0)
        p.mul_(2.0)
    assert p._version == v + 2
    assert p.requires_grad and p.is_leaf
    assert_close(p, (x + 1) * 2)
    (p * p).sum().backward()
    assert_close(p.grad, 2 * (x + 1) * 2)


def test_no_grad_and_enable_grad():
    p = phalanx.tensor(randn((3,), seed=24), requires_grad=True)
    assert phalanx.is_grad_enabled()
    with phalanx.no_grad():
        assert not phalanx.is_grad_enabled()
        y = p * 2
        z = F.relu(p).sum()
        assert not y.requires_grad and y.grad_fn is None
        assert not z.requires_grad
        with phalanx.enable_grad():
            assert phalanx.is_grad_enabled()
            w = p * 2
            assert w.requires_grad and w.grad_fn is not None
        assert not phalanx.is_grad_enabled()
    assert phalanx.is_grad_enabled()
    assert (p * 2).requires_grad


def test_no_grad_restored_after_exception():
    with pytest.raises(KeyError):
        with phalanx.no_grad():
            raise KeyError("x")
    assert phalanx.is_grad_enabled()


def test_leaf_and_grad_fn():
    p = phalanx.tensor(randn((3,), seed=25), requires_grad=True)
    q = phalanx.tensor(randn((3,), seed=26))
    assert p.is_leaf and p.grad_fn is None
    assert q.is_leaf and q.grad_fn is None and not q.requires_grad
    y = p * q
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    z = q * 2
    assert z.is_leaf and z.grad_fn is None and not z.requires_grad
    v = p[1:]
    assert not v.is_leaf and v.grad_fn is not None
    d = y.detach()
    assert d.is_leaf and not d.requires_grad


def test_requires_grad_setter():
    q = phalanx.tensor(randn((3,), seed=27))
    assert not q.requires_grad
    q.requires_grad = True
    assert q.requires_grad and q.is_leaf
    (q * 2).sum().backward()
    assert_close(q.grad, np.full(3, 2.0, np.float32))
    r = phalanx.tensor(randn((3,), seed=28))
    out = r.requires_grad_()
    assert r.requires_grad
    assert out.requires_grad
    r.requires_grad_(False)
    assert not r.requires_grad


def test_nonleaf_grad_is_none_without_retain_grad():
    p = phalanx.tensor(randn((3,), seed=29), requires_grad=True)
    y = p * 2
    (y * y).sum().backward()
    assert y.grad is None
    assert p.grad is not None


def test_retain_grad():
    x = randn((3,), seed=30)
    p, t = pair(x)
    py, ty = p * 2, t * 2
    py.retain_grad()
    ty.retain_grad()
    (py * py).sum().backward()
    (ty * ty).sum().backward()
    assert_close(py.grad, ty.grad)
    assert_close(p.grad, t.grad)


def test_grad_does_not_flow_through_detach():
    x = randn((3,), seed=31)
    p, t = pair(x)
    (p.detach() * p).sum().backward()
    (t.detach() * t).sum().backward()
    assert_close(p.grad, t.grad)


def test_grad_shape_dtype():
    p = phalanx.tensor(randn((2, 3), seed=32), requires_grad=True)
    (p.sum(0) * 2).sum().backward()
    assert tuple(p.grad.shape) == (2, 3) and p.grad.dtype == phalanx.float32
    assert not p.grad.requires_grad


# ---------------------------------------------------------------- hooks


def test_hook_on_leaf_replaces_grad():
    p = phalanx.tensor(randn((3,), seed=33), requires_grad=True)
    seen = []

    def hook(g):
        seen.append(to_numpy(g).copy())
        return g * 2

    p.register_hook(hook)
    (p * 3).sum().backward()
    assert len(seen) == 1
    assert_close(seen[0], np.full(3, 3.0, np.float32))
    assert_close(p.grad, np.full(3, 6.0, np.float32))


def test_hook_on_intermediate_replaces_grad():
    x = randn((3,), seed=34)
    p, t = pair(x)
    seen_p, seen_t = [], []
    py, ty = p * 2, t * 2
    py.register_hook(lambda g: (seen_p.append(to_numpy(g).copy()), g * 10)[1])
    ty.register_hook(lambda g: (seen_t.append(g.detach().numpy().copy()), g * 10)[1])
    (py * py).sum().backward()
    (ty * ty).sum().backward()
    assert len(seen_p) == 1
    assert_close(seen_p[0], seen_t[0])
    assert_close(p.grad, t.grad)


def test_hook_on_reused_leaf_fires_once_with_total_grad():
    x = randn((3,), seed=39)
    p = phalanx.tensor(x, requires_grad=True)
    seen = []
    p.register_hook(lambda g: seen.append(to_numpy(g).copy()))
    (p * 2 + p * p + p.exp()).sum().backward()
    assert len(seen) == 1
    assert_close(seen[0], 2 + 2 * x + np.exp(x))


def test_hook_returning_none_keeps_grad():
    p = phalanx.tensor(randn((3,), seed=35), requires_grad=True)
    calls = []
    p.register_hook(lambda g: calls.append(1))
    (p * 4).sum().backward()
    assert calls == [1]
    assert_close(p.grad, np.full(3, 4.0, np.float32))


def test_multiple_hooks_chain():
    p = phalanx.tensor(randn((2,), seed=36), requires_grad=True)
    p.register_hook(lambda g: g + 1)
    p.register_hook(lambda g: g * 3)
    (p * 2).sum().backward()
    t = torch.tensor(randn((2,), seed=36), requires_grad=True)
    t.register_hook(lambda g: g + 1)
    t.register_hook(lambda g: g * 3)
    (t * 2).sum().backward()
    assert_close(p.grad, t.grad)


def test_post_accumulate_grad_hook():
    x = randn((3,), seed=37)
    p = phalanx.tensor(x, requires_grad=True)
    calls = []

    def hook(tensor):
        calls.append(to_numpy(tensor.grad).copy())

    p.register_post_accumulate_grad_hook(hook)
    # p used in three branches: hook must fire once, after the full gradient is in .grad
    y = (p * 2).sum() + (p * p).sum() + p.exp().sum()
    y.backward()
    assert len(calls) == 1
    expected = 2 + 2 * x + np.exp(x)
    assert_close(calls[0], expected)
    assert_close(p.grad, expected)
    # second backward: accumulated grad visible in the hook
    (p * 1).sum().backward()
    assert len(calls) == 2
    assert_close(calls[1], expected + 1)


def test_post_accumulate_hook_receives_tensor_itself():
    p = phalanx.tensor(randn((2,), seed=38), requires_grad=True)
    got = []
    p.register_post_accumulate_grad_hook(lambda t: got.append(t))
    (p * 2).sum().backward()
    assert len(got) == 1
    got[0].grad.zero_()  # e.g. an optimizer step in the hook
    assert (to_numpy(p.grad) == 0).all()


def test_hooks_multiple_leaves_each_once():
    ps = [phalanx.tensor(randn((2,), seed=40 + i), requires_grad=True) for i in range(3)]
    counts = [0, 0, 0]
    for i, p in enumerate(ps):

        def h(t, i=i):
            counts[i] += 1

        p.register_post_accumulate_grad_hook(h)
    out = (ps[0] * ps[1]).sum() + (ps[1] * ps[2]).sum() + ps[0].sum()
    out.backward()
    assert counts == [1, 1, 1]


# ---------------------------------------------------------------- version counter


@pytest.mark.parametrize(
    "make",
    [
        lambda: phalanx.zeros(2, 3),
        lambda: phalanx.ones(2, 3),
        lambda: phalanx.tensor([1.0, 2.0]),
        lambda: phalanx.full((2,), 3.0),
        lambda: phalanx.rand(2),
        lambda: phalanx.arange(3),
        lambda: phalanx.tensor([1.0]) * 2,
        lambda: phalanx.tensor([1.0]).clone(),
    ],
)
def test_fresh_tensor_version_is_zero(make):
    assert make()._version == 0


def test_version_counter():
    p = phalanx.tensor(np.zeros((2, 3), np.float32))
    v0 = p._version
    p.add_(1)
    assert p._version == v0 + 1
    v = p[0]
    v.mul_(2)
    assert p._version == v0 + 2 and v._version == v0 + 2
    t = p.t()
    t[1, 1] = 5.0
    assert p._version == v0 + 3 and v._version == v0 + 3 and t._version == v0 + 3
    p.zero_()
    assert p._version == v0 + 4
    p += 1
    assert p._version == v0 + 5
    c = p.clone()
    c0 = c._version
    c.add_(1)
    assert c._version == c0 + 1 and p._version == v0 + 5  # clone has its own counter
    q = p * 2  # out-of-place does not bump
    assert p._version == v0 + 5 and q is not None
    d = p.detach()
    d.fill_(1.0)
    assert p._version == d._version


def test_backward_callback_runs_after_every_gradient_is_accumulated():
    w1 = phalanx.ones(3, requires_grad=True)
    w2 = phalanx.ones(3, requires_grad=True)
    seen = []

    def on_end():
        seen.append(("end", w1.grad is not None and w2.grad is not None))

    def on_w2(_p):
        seen.append(("w2", None))
        if len(seen) == 1:
            phalanx._C._queue_backward_callback(on_end)

    w2.register_post_accumulate_grad_hook(on_w2)
    ((w1 * 2).sum() + (w2 * 3).sum()).backward()
    assert seen == [("w2", None), ("end", True)]
    # One backward's callback does not leak into the next.
    (w1 * 2).sum().backward()
    assert len(seen) == 2


def test_backward_callback_outside_backward_raises():
    with pytest.raises(RuntimeError, match="only possible while a backward pass runs"):
        phalanx._C._queue_backward_callback(lambda: None)


def test_hook_changing_the_gradient_shape_is_refused():
    p = phalanx.ones(3, requires_grad=True)
    p.register_hook(lambda g: phalanx.ones(7))
    with pytest.raises(RuntimeError, match=r"tensor of shape \[3\] to \[7\]"):
        (p * 2).sum().backward()
    assert p.grad is None


def test_hook_on_intermediate_changing_the_gradient_dtype_is_refused():
    x = phalanx.ones(2, requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g.half())
    with pytest.raises(
        RuntimeError, match=r"changed the dtype of the gradient of a tensor of shape \[2\]"
    ):
        y.sum().backward()


# ---------------------------------------------------------------- .grad takes unshared gradients


def test_an_unshared_leaf_gradient_is_taken_without_a_copy():
    # issue 17: a parameter's first gradient after zero_grad became .grad through a copy of
    # the whole tensor; now the gradient nobody else holds is taken as it is (one allocation:
    # the multiply's backward output)
    x = phalanx.randn(1 << 16, requires_grad=True)
    g = phalanx.ones(1 << 16)
    for _ in range(2):
        x.grad = None
        y = x * 2
        before = phalanx.memory_stats()["allocations"]
        y.backward(g)
        assert phalanx.memory_stats()["allocations"] - before == 1
        np.testing.assert_array_equal(x.grad.numpy(), np.full(1 << 16, 2, np.float32))


def test_a_leaf_gradient_someone_else_holds_is_copied():
    # the same gradient handed to two leaves (an add's backward)
    a = phalanx.randn(5, requires_grad=True)
    b = phalanx.randn(5, requires_grad=True)
    (a + b).backward(phalanx.ones(5))
    a.grad.mul_(3)
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(5, np.float32))
    # the caller's own gradient passed straight through, over numpy memory
    arr = np.ones(5, np.float32)
    c = phalanx.randn(5, requires_grad=True)
    (c + 1).backward(phalanx.from_numpy(arr))
    arr[:] = 7
    np.testing.assert_array_equal(c.grad.numpy(), np.ones(5, np.float32))
    # a hook that keeps the gradient it saw
    seen = []
    d = phalanx.randn(5, requires_grad=True)
    d.register_hook(lambda g: seen.append(g))
    (d * 2).backward(phalanx.ones(5))
    seen[0].mul_(0)
    np.testing.assert_array_equal(d.grad.numpy(), np.full(5, 2, np.float32))
