"""Loss functions vs torch: cross_entropy, nll_loss, mse_loss; forward and gradients."""

import numpy as np
import pytest
from conftest import assert_close, check_op, randn, uniform

import phalanx
import phalanx.nn.functional as F

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

REDUCTIONS = ["mean", "sum", "none"]


def _targets(shape, c, seed, ignore_index=None, n_ignored=0):
    t = np.random.default_rng(seed).integers(0, c, shape).astype(np.int64)
    if ignore_index is not None and n_ignored:
        flat = t.reshape(-1)
        pos = np.random.default_rng(seed + 1).choice(flat.size, n_ignored, replace=False)
        flat[pos] = ignore_index
    return t


def _run_loss(pf, tf, x, target, weight, **kw):
    """Compare loss value and input gradient; target/weight are constants."""
    pt, tt = phalanx.tensor(target), torch.tensor(target)
    pw = phalanx.tensor(weight) if weight is not None else None
    tw = torch.tensor(weight) if weight is not None else None
    check_op(
        lambda a: pf(a, pt, weight=pw, **kw),
        lambda a: tf(a, tt, weight=tw, **kw),
        [x],
        rtol=1e-4,
        atol=1e-5,
    )


# (input shape, classes) ; target shape = input shape without dim 1
CE_SHAPES = [
    ((5, 4), 4),
    ((1, 3), 3),
    ((7, 10), 10),
    ((2, 3, 4, 5), 3),
    ((1, 4, 3, 3), 4),
    ((3, 2, 5), 2),
]
CE_OPTS = [
    dict(weight=False, ignore=None, smoothing=0.0),
    dict(weight=True, ignore=None, smoothing=0.0),
    dict(weight=False, ignore=-100, smoothing=0.0),
    dict(weight=False, ignore=1, smoothing=0.0),
    dict(weight=True, ignore=-100, smoothing=0.0),
    dict(weight=False, ignore=None, smoothing=0.1),
    dict(weight=True, ignore=None, smoothing=0.25),
    dict(weight=False, ignore=-100, smoothing=0.2),
    dict(weight=True, ignore=-1, smoothing=0.3),
]


def _ce_id(o):
    return f"w{int(o['weight'])}-ig{o['ignore']}-ls{o['smoothing']}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", CE_OPTS, ids=[_ce_id(o) for o in CE_OPTS])
@pytest.mark.parametrize("shape,c", CE_SHAPES, ids=[str(s) for s, _ in CE_SHAPES])
def test_cross_entropy(shape, c, opts, reduction):
    x = randn(shape, seed=1, scale=2.0)
    tshape = (shape[0],) + tuple(shape[2:])
    n_t = int(np.prod(tshape))
    ignore = opts["ignore"]
    n_ign = min(2, n_t - 1) if ignore is not None else 0
    tgt = _targets(tshape, c, seed=2, ignore_index=ignore, n_ignored=n_ign)
    weight = uniform((c,), seed=3, low=0.2, high=2.0) if opts["weight"] else None
    kw = dict(reduction=reduction, label_smoothing=opts["smoothing"])
    if ignore is not None:
        kw["ignore_index"] = ignore
    _run_loss(F.cross_entropy, TF.cross_entropy, x, tgt, weight, **kw)


def test_cross_entropy_positional_and_defaults():
    x = randn((4, 3), seed=4)
    tgt = np.array([0, 2, 1, 2], np.int64)
    pt, tt = phalanx.tensor(tgt), torch.tensor(tgt)
    check_op(lambda a: F.cross_entropy(a, pt), lambda a: TF.cross_entropy(a, tt), [x])
    w = uniform((3,), seed=5, low=0.5, high=1.5)
    pw, tw = phalanx.tensor(w), torch.tensor(w)
    check_op(lambda a: F.cross_entropy(a, pt, pw), lambda a: TF.cross_entropy(a, tt, tw), [x])
    out = F.cross_entropy(phalanx.tensor(x), pt)
    assert tuple(out.shape) == ()


def test_cross_entropy_weight_requires_no_grad_but_input_view():
    x = randn((3, 6), seed=6)
    tgt = np.array([1, 0, 2], np.int64)
    pt, tt = phalanx.tensor(tgt), torch.tensor(tgt)
    check_op(
        lambda a: F.cross_entropy(a[:, ::2], pt), lambda a: TF.cross_entropy(a[:, ::2], tt), [x]
    )
    check_op(
        lambda a: F.cross_entropy(a.t().t() * 2, pt, label_smoothing=0.1),
        lambda a: TF.cross_entropy(a.t().t() * 2, tt, label_smoothing=0.1),
        [x],
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_all_ignored_mean(smoothing):
    x = randn((3, 4), seed=7)
    tgt = np.full((3,), -100, np.int64)
    pt, tt = phalanx.tensor(tgt), torch.tensor(tgt)
    po = F.cross_entropy(phalanx.tensor(x), pt, label_smoothing=smoothing)
    to = TF.cross_entropy(torch.tensor(x), tt, label_smoothing=smoothing)
    assert_close(po, to)  # torch: nan (0/0)
    ps = F.cross_entropy(phalanx.tensor(x), pt, reduction="sum")
    assert_close(ps, TF.cross_entropy(torch.tensor(x), tt, reduction="sum"))


def test_cross_entropy_extreme_logits_stable():
    x = np.array([[1000.0, -1000.0, 0.0], [-500.0, 500.0, 499.0]], np.float32)
    tgt = np.array([1, 2], np.int64)
    pt, tt = phalanx.tensor(tgt), torch.tensor(tgt)
    check_op(lambda a: F.cross_entropy(a, pt), lambda a: TF.cross_entropy(a, tt), [x])


# ---------------------------------------------------------------- nll_loss

NLL_SHAPES = [((5, 4), 4), ((1, 2), 2), ((2, 3, 4, 5), 3), ((2, 4, 7), 4)]
NLL_OPTS = [
    dict(weight=False, ignore=None),
    dict(weight=True, ignore=None),
    dict(weight=False, ignore=-100),
    dict(weight=True, ignore=0),
    dict(weight=True, ignore=-100),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "opts", NLL_OPTS, ids=[f"w{int(o['weight'])}-ig{o['ignore']}" for o in NLL_OPTS]
)
@pytest.mark.parametrize("shape,c", NLL_SHAPES, ids=[str(s) for s, _ in NLL_SHAPES])
def test_nll_loss(shape, c, opts, reduction):
    x = randn(shape, seed=8)
    tshape = (shape[0],) + tuple(shape[2:])
    n_t = int(np.prod(tshape))
    ignore = opts["ignore"]
    n_ign = min(2, n_t - 1) if ignore is not None else 0
    tgt = _targets(tshape, c, seed=9, ignore_index=ignore, n_ignored=n_ign)
    weight = uniform((c,), seed=10, low=0.2, high=2.0) if opts["weight"] else None
    kw = dict(reduction=reduction)
    if ignore is not None:
        kw["ignore_index"] = ignore
    _run_loss(F.nll_loss, TF.nll_loss, x, tgt, weight, **kw)


def test_nll_of_log_softmax_equals_cross_entropy():
    x = randn((6, 5), seed=11)
    tgt = phalanx.tensor(_targets((6,), 5, seed=12))
    a = F.nll_loss(F.log_softmax(phalanx.tensor(x), 1), tgt)
    b = F.cross_entropy(phalanx.tensor(x), tgt)
    assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- mse

MSE_SHAPES = [
    ((5,), (5,)),
    ((3, 4), (3, 4)),
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((), ()),
    ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("sa,sb", MSE_SHAPES, ids=[str(s) for s, _ in MSE_SHAPES])
def test_mse_loss(sa, sb, reduction):
    a, b = randn(sa, seed=13), randn(sb, seed=14)
    check_op(
        lambda x, y: F.mse_loss(x, y, reduction=reduction),
        lambda x, y: TF.mse_loss(x, y, reduction=reduction),
        [a, b],
    )


def test_mse_loss_default_and_positional():
    a, b = randn((4, 3), seed=15), randn((4, 3), seed=16)
    check_op(F.mse_loss, TF.mse_loss, [a, b])
    check_op(
        lambda x, y: F.mse_loss(x, y, reduction="sum"),
        lambda x, y: TF.mse_loss(x, y, reduction="sum"),
        [a, b],
        requires_grad=[True, False],
    )
    check_op(lambda x, y: F.mse_loss(x.t(), y.t()), lambda x, y: TF.mse_loss(x.t(), y.t()), [a, b])


def test_loss_in_training_like_graph():
    x = randn((4, 6), seed=17)
    w = randn((3, 6), seed=18, scale=0.5)
    tgt = _targets((4,), 3, seed=19)
    pt, tt = phalanx.tensor(tgt), torch.tensor(tgt)

    def pf(xx, ww):
        return F.cross_entropy(F.relu(F.linear(xx, ww)), pt) + F.mse_loss(xx.mean(1), xx.sum(1) * 0)

    def tf(xx, ww):
        return TF.cross_entropy(TF.relu(TF.linear(xx, ww)), tt) + TF.mse_loss(
            xx.mean(1), xx.sum(1) * 0
        )

    check_op(pf, tf, [x, w])
