"""BCE, BCE with logits (weight, pos_weight), L1, smooth L1 (beta), Huber, KL divergence
(reduction, log_target) and cross_entropy with class-probability targets (weight,
label_smoothing) against torch: values and gradients for input and target, every reduction,
edge values (probabilities 0 and 1, logits 0 and +-100), modules and bad arguments."""

import numpy as np
import pytest
from conftest import assert_close, check_op, randn, uniform

import phalanx
import phalanx.nn.functional as F

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

REDUCTIONS = ["mean", "sum", "none"]
SHAPES = [(7,), (4, 5), (2, 3, 4, 2)]


def probs(shape, seed):
    return uniform(shape, seed, 0.02, 0.98)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(shape, reduction, weighted):
    w = uniform(shape[-1:], 5, 0.5, 2.0) if weighted else None

    def run(lib_F, lib):
        kw = dict(reduction=reduction)
        if w is not None:
            kw["weight"] = lib.tensor(w)
        return lambda x, t: lib_F.binary_cross_entropy(x, t, **kw)

    check_op(run(F, phalanx), run(TF, torch), [probs(shape, 1), probs(shape, 2)], rtol=1e-4)


def test_binary_cross_entropy_edges_match_torch():
    """Probabilities of exactly 0 and 1: log clamped at -100, the gradient PyTorch's."""
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-8], np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 1.0], np.float32)
    check_op(
        lambda a: F.binary_cross_entropy(a, phalanx.tensor(t), reduction="none"),
        lambda a: TF.binary_cross_entropy(a, torch.tensor(t), reduction="none"),
        [x],
        rtol=1e-5,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_binary_cross_entropy_with_logits(shape, reduction, weights):
    w = uniform(shape, 5, 0.5, 2.0) if weights in ("weight", "both") else None
    pw = uniform(shape[-1:], 6, 0.5, 3.0) if weights in ("pos_weight", "both") else None

    def run(lib_F, lib):
        kw = dict(reduction=reduction)
        if w is not None:
            kw["weight"] = lib.tensor(w)
        if pw is not None:
            kw["pos_weight"] = lib.tensor(pw)
        return lambda x, t: lib_F.binary_cross_entropy_with_logits(x, t, **kw)

    x = randn(shape, seed=3, scale=3.0)
    check_op(run(F, phalanx), run(TF, torch), [x, probs(shape, 4)], rtol=1e-4, atol=1e-5)


def test_binary_cross_entropy_with_logits_edges():
    """Logits 0 (the kink of |x|: gradient sigmoid(0) - t) and +-100 (no overflow)."""
    x = np.array([0.0, 0.0, 100.0, -100.0, 100.0, -100.0, 20.0], np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0], np.float32)
    pw = np.array([2.0], np.float32)
    for kw_p, kw_t in (
        ({}, {}),
        ({"pos_weight": phalanx.tensor(pw)}, {"pos_weight": torch.tensor(pw)}),
    ):
        check_op(
            lambda a, kw_p=kw_p: F.binary_cross_entropy_with_logits(
                a, phalanx.tensor(t), reduction="none", **kw_p
            ),
            lambda a, kw_t=kw_t: TF.binary_cross_entropy_with_logits(
                a, torch.tensor(t), reduction="none", **kw_t
            ),
            [x],
            rtol=1e-5,
            atol=1e-6,
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_l1_loss(shape, reduction):
    check_op(
        lambda a, b: F.l1_loss(a, b, reduction=reduction),
        lambda a, b: TF.l1_loss(a, b, reduction=reduction),
        [randn(shape, seed=1), randn(shape, seed=2)],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0, 3.0])
def test_smooth_l1_loss(reduction, beta):
    check_op(
        lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
        lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
        [randn((6, 5), seed=1, scale=2.0), randn((6, 5), seed=2)],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_huber_loss(reduction, delta):
    check_op(
        lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=delta),
        lambda a, b: TF.huber_loss(a, b, reduction=reduction, delta=delta),
        [randn((6, 5), seed=1, scale=2.0), randn((6, 5), seed=2)],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("zeros", [False, True])
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def test_kl_div(reduction, log_target, zeros):
    logp = np.log(uniform((4, 6), 1, 0.05, 1.0))
    target = uniform((4, 6), 2, 0.05, 1.0)
    if zeros:  # zero probabilities contribute 0 (xlogy); the target's gradient there is
        target[0, :2] = 0.0  # torch's NaN, so only the input's is compared
    if log_target:
        target = np.log(target + 0.1).astype(np.float32)
    check_op(
        lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
        lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
        [logp.astype(np.float32), target],
        requires_grad=[True, not zeros or log_target],
        rtol=1e-4,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5,), (4, 5), (3, 5, 2, 2)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probability_targets(shape, reduction, smoothing, weighted):
    c = shape[0] if len(shape) == 1 else shape[1]
    w = uniform((c,), 9, 0.5, 2.0) if weighted else None
    q = uniform(shape, 2, 0.0, 1.0)
    q = (q / q.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)).astype(np.float32)

    def run(lib_F, lib):
        kw = dict(reduction=reduction, label_smoothing=smoothing)
        if w is not None:
            kw["weight"] = lib.tensor(w)
        return lambda x, t: lib_F.cross_entropy(x, t, **kw)

    check_op(run(F, phalanx), run(TF, torch), [randn(shape, seed=1), q], rtol=1e-4)


LOSS_MODULES = [
    ("L1Loss", {}, "float"),
    ("SmoothL1Loss", dict(beta=0.5), "float"),
    ("HuberLoss", dict(delta=0.5), "float"),
    ("KLDivLoss", dict(reduction="batchmean"), "prob"),
    ("KLDivLoss", dict(reduction="sum", log_target=True), "float"),
    ("BCELoss", dict(reduction="sum"), "both-prob"),
    ("BCEWithLogitsLoss", {}, "prob"),
    ("CrossEntropyLoss", dict(label_smoothing=0.1), "prob"),
]


@pytest.mark.parametrize("name,kwargs,kind", LOSS_MODULES)
def test_loss_modules_match_torch(name, kwargs, kind):
    x = probs((4, 3), 1) if kind == "both-prob" else randn((4, 3), seed=1)
    t = randn((4, 3), seed=2) if kind == "float" else probs((4, 3), 2)
    check_op(
        lambda a, b: getattr(phalanx.nn, name)(**kwargs)(a, b),
        lambda a, b: getattr(torch.nn, name)(**kwargs)(a, b),
        [x, t],
        rtol=1e-4,
    )


def test_bce_with_logits_module_weights_are_buffers():
    pw = phalanx.tensor(np.array([1.0, 2.0, 3.0], np.float32))
    w = phalanx.tensor(np.array([0.5, 1.0, 1.0], np.float32))
    loss = phalanx.nn.BCEWithLogitsLoss(weight=w, pos_weight=pw)
    assert sorted(loss.state_dict()) == ["pos_weight", "weight"]
    x, t = randn((4, 3), seed=1), probs((4, 3), 2)
    tl = torch.nn.BCEWithLogitsLoss(
        weight=torch.tensor(w.numpy()), pos_weight=torch.tensor(pw.numpy())
    )
    assert_close(loss(phalanx.tensor(x), phalanx.tensor(t)), tl(torch.tensor(x), torch.tensor(t)))


def test_legacy_size_average_and_reduce():
    x, t = randn((4, 3), seed=1), randn((4, 3), seed=2)
    for kw in (dict(size_average=False), dict(reduce=False)):
        assert_close(
            phalanx.nn.L1Loss(**kw)(phalanx.tensor(x), phalanx.tensor(t)),
            torch.nn.L1Loss(**kw)(torch.tensor(x), torch.tensor(t)),
        )


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda x, t: F.l1_loss(x, t, reduction="avg"), ValueError, "reduction must be .*'avg'"),
        (lambda x, t: F.l1_loss(x, t.reshape(12)), ValueError, r"target shape \[12\] differs"),
        (lambda x, t: F.smooth_l1_loss(x, t, beta=-1.0), ValueError, "beta must be >= 0, got -1"),
        (lambda x, t: F.huber_loss(x, t, delta=0.0), ValueError, "delta must be > 0, got 0"),
        (lambda x, t: F.kl_div(x, t, reduction="batch"), ValueError, "'batchmean'"),
        (lambda x, t: F.binary_cross_entropy(x, t), ValueError, "between 0 and 1"),
        (lambda x, t: F.binary_cross_entropy(F.sigmoid(x), t.long()), TypeError, "floating point"),
        (lambda x, t: F.l1_loss(x, [1.0]), TypeError, "must be tensors"),
        (
            lambda x, t: F.cross_entropy(x, t.reshape(3, 4)),
            ValueError,
            r"target shape \[3, 4\] must equal input shape \[4, 3\]",
        ),
    ],
)
def test_bad_arguments_raise_clearly(call, error, message):
    x, t = phalanx.tensor(randn((4, 3), seed=1)), phalanx.tensor(randn((4, 3), seed=2))
    with pytest.raises(error, match=message):
        call(x, t)
