"""phalanx.nn.functional ops vs torch.nn.functional: forward and every input gradient."""

import numpy as np
import pytest
from conftest import (
    assert_close,
    away_from_zero,
    check_op,
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

CONV_TOL = dict(rtol=1e-4, atol=1e-4)

# (N, Cin, H, W, Cout, kernel, stride, padding, dilation, groups, bias)
CONV_CASES = [
    (2, 3, 8, 8, 4, 3, 1, 0, 1, 1, True),
    (1, 3, 7, 9, 5, 3, 1, 1, 1, 1, True),
    (1, 1, 5, 5, 1, 1, 1, 0, 1, 1, False),
    (2, 4, 9, 9, 6, 3, 2, 1, 1, 1, True),
    (2, 3, 10, 7, 2, 3, 2, 0, 1, 1, False),
    (1, 2, 11, 11, 3, 5, 3, 2, 1, 1, True),
    (2, 3, 9, 9, 4, 3, 1, 2, 2, 1, True),
    (1, 2, 12, 10, 2, 3, 2, 3, 3, 1, False),
    (2, 4, 6, 6, 6, 3, 1, 1, 1, 2, True),
    (1, 6, 7, 7, 3, 1, 1, 0, 1, 3, False),
    (2, 4, 8, 8, 4, 3, 1, 1, 1, 4, True),  # depthwise
    (1, 3, 9, 9, 6, 3, 2, 1, 1, 3, False),  # depthwise, multiplier 2
    (2, 8, 5, 5, 8, 3, 1, 1, 1, 8, False),  # depthwise
    (1, 4, 6, 8, 8, (1, 3), (1, 2), (0, 1), 1, 2, True),
    (2, 2, 7, 6, 3, (3, 2), 1, (1, 0), (2, 1), 1, True),
    (1, 3, 4, 4, 2, 4, 1, 0, 1, 1, True),  # kernel == input
    (3, 5, 5, 6, 7, 2, (2, 1), (1, 1), 1, 1, True),
    (1, 16, 4, 4, 8, 1, 1, 0, 1, 1, True),
]


def _conv_ids():
    return [
        f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}O{c[4]}k{c[5]}s{c[6]}p{c[7]}d{c[8]}g{c[9]}b{int(c[10])}"
        for c in CONV_CASES
    ]


def _pair2(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_ids())
def test_conv2d(case):
    n, cin, h, w, cout, k, s, p, d, g, bias = case
    kh, kw = _pair2(k)
    x = randn((n, cin, h, w), seed=1)
    wt = randn((cout, cin // g, kh, kw), seed=2, scale=0.5)
    arrays = [x, wt] + ([randn((cout,), seed=3)] if bias else [])

    def pf(xx, ww, bb=None):
        return F.conv2d(xx, ww, bb, stride=s, padding=p, dilation=d, groups=g)

    def tf(xx, ww, bb=None):
        return TF.conv2d(xx, ww, bb, stride=s, padding=p, dilation=d, groups=g)

    check_op(pf, tf, arrays, **CONV_TOL)


@pytest.mark.parametrize("which", ["x", "w", "b"])
def test_conv2d_partial_requires_grad(which):
    x, wt, b = randn((2, 3, 6, 6), seed=4), randn((4, 3, 3, 3), seed=5), randn((4,), seed=6)
    rg = [which == "x", which == "w", which == "b"]
    check_op(
        lambda *a: F.conv2d(*a, padding=1),
        lambda *a: TF.conv2d(*a, padding=1),
        [x, wt, b],
        requires_grad=rg,
        **CONV_TOL,
    )


def test_conv2d_positional_args_and_noncontiguous_input():
    x, wt = randn((2, 3, 7, 7), seed=7), randn((4, 3, 3, 3), seed=8)

    def f(xx, ww):
        m = F if isinstance(xx, phalanx.Tensor) else TF
        return m.conv2d(xx.permute(0, 1, 3, 2), ww, None, 2, 1, 1, 1)

    check_op(f, f, [x, wt], **CONV_TOL)


def test_conv_chain_and_reuse():
    x = randn((1, 2, 8, 8), seed=9)
    w1, w2 = randn((4, 2, 3, 3), seed=10, scale=0.3), randn((4, 4, 3, 3), seed=11, scale=0.3)

    def f(xx, a, b):
        m = F if isinstance(xx, phalanx.Tensor) else TF
        y = m.relu(m.conv2d(xx, a, padding=1))
        z = m.conv2d(y, b, padding=1)
        return m.conv2d(z + y, b, stride=2)

    check_op(f, f, [x, w1, w2], **CONV_TOL)


# ---------------------------------------------------------------- linear


@pytest.mark.parametrize("xshape", [(5, 4), (1, 4), (2, 3, 4), (4,)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("out", [3, 1])
def test_linear(xshape, bias, out):
    x = randn(xshape, seed=12)
    w = randn((out, 4), seed=13)
    arrays = [x, w] + ([randn((out,), seed=14)] if bias else [])
    check_op(F.linear, TF.linear, arrays, rtol=1e-4, atol=1e-5)


# Forward and backward run on oneDNN's matmul (dw = dy^T x through a strided transpose): the
# benchmark's shapes and odd ones, every subset of inputs needing a gradient.
@pytest.mark.parametrize("n,i,o", [(64, 2048, 1000), (32, 400, 120), (7, 33, 5), (1, 1, 1)])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, True)])
def test_linear_shapes_and_partial_grads(n, i, o, needs):
    arrays = [randn((n, i), seed=n), randn((o, i), seed=i, scale=i**-0.5), randn((o,), seed=o)]
    check_op(F.linear, TF.linear, arrays, requires_grad=list(needs), rtol=1e-4, atol=1e-4)


def test_linear_with_non_contiguous_input_and_grad():
    """x as a transpose, and the upstream gradient reaching linear through a transpose."""
    x, w, b = randn((9, 6), seed=20), randn((4, 9), seed=21), randn((4,), seed=22)

    def run(fw, fn):
        xt = fw.tensor(x, requires_grad=True)
        wt, bt = fw.tensor(w, requires_grad=True), fw.tensor(b, requires_grad=True)
        y = fn(xt.t(), wt, bt).t()  # (4, 6): its gradient arrives transposed
        (y * fw.tensor(randn((4, 6), seed=23))).sum().backward()
        return [y, xt.grad, wt.grad, bt.grad]

    for p, t in zip(run(phalanx, F.linear), run(torch, TF.linear), strict=True):
        assert_close(p, t, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- batch norm

# issue 17: a plain input is normalised by direct loops (batch_norm_plain.h): a larger one with
# an offset mean (two-pass variance) and a 5-D one too
BN_SHAPES = [(4, 3, 5, 5), (1, 2, 3, 3), (3, 5, 1, 7), (6, 4), (2, 3, 4), (8, 16, 12, 12)]
BN_SHAPES += [(2, 3, 2, 3, 4)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=[str(s) for s in BN_SHAPES])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_batch_norm(shape, affine, training, momentum):
    c = shape[1]
    x = randn(shape, seed=15, scale=2.0) + 0.5
    rm = randn((c,), seed=16, scale=0.3)
    rv = uniform((c,), seed=17, low=0.5, high=2.0)
    p_rm, t_rm = phalanx.tensor(rm.copy()), torch.tensor(rm.copy())
    p_rv, t_rv = phalanx.tensor(rv.copy()), torch.tensor(rv.copy())
    arrays = [x] + (
        [uniform((c,), seed=18, low=0.5, high=1.5), randn((c,), seed=19)] if affine else []
    )

    def pf(xx, w=None, b=None):
        return F.batch_norm(xx, p_rm, p_rv, w, b, training=training, momentum=momentum, eps=1e-5)

    def tf(xx, w=None, b=None):
        return TF.batch_norm(xx, t_rm, t_rv, w, b, training=training, momentum=momentum, eps=1e-5)

    check_op(pf, tf, arrays, rtol=1e-4, atol=1e-4)
    # running statistics updated (training) or untouched (eval) exactly like torch
    assert_close(p_rm, t_rm, rtol=1e-5, atol=1e-6)
    assert_close(p_rv, t_rv, rtol=1e-5, atol=1e-6)
    if not training:
        assert_close(p_rm, rm, rtol=0, atol=0)
        assert_close(p_rv, rv, rtol=0, atol=0)


def test_batch_norm_running_stats_over_steps():
    c = 3
    p_rm, t_rm = phalanx.zeros(c), torch.zeros(c)
    p_rv, t_rv = phalanx.ones(c), torch.ones(c)
    for step in range(4):
        x = randn((5, c, 3, 3), seed=100 + step, scale=1.0 + step) + step
        F.batch_norm(phalanx.tensor(x), p_rm, p_rv, training=True)
        TF.batch_norm(torch.tensor(x), t_rm, t_rv, training=True)
    assert_close(p_rm, t_rm, rtol=1e-5, atol=1e-6)
    assert_close(p_rv, t_rv, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_without_running_stats(affine):
    x = randn((3, 4, 2, 5), seed=20)
    arrays = [x] + (
        [uniform((4,), seed=21, low=0.5, high=1.5), randn((4,), seed=22)] if affine else []
    )
    check_op(
        lambda xx, *wb: F.batch_norm(xx, None, None, *wb, training=True),
        lambda xx, *wb: TF.batch_norm(xx, None, None, *wb, training=True),
        arrays,
        rtol=1e-4,
        atol=1e-4,
    )


def test_batch_norm_eps_and_weight_only():
    x = randn((4, 2, 3, 3), seed=23)
    w = uniform((2,), seed=24, low=0.5, high=1.5)
    check_op(
        lambda xx, ww: F.batch_norm(xx, None, None, ww, None, True, 0.1, 1e-1),
        lambda xx, ww: TF.batch_norm(xx, None, None, ww, None, True, 0.1, 1e-1),
        [x, w],
        rtol=1e-4,
        atol=1e-4,
    )


def test_batch_norm_noncontiguous_input():
    x = randn((3, 5, 4, 2), seed=25)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    p_rm, p_rv, t_rm, t_rv = (
        phalanx.tensor(rm),
        phalanx.tensor(rv),
        torch.tensor(rm),
        torch.tensor(rv),
    )
    check_op(
        lambda xx: F.batch_norm(xx.permute(0, 3, 1, 2), p_rm, p_rv, training=True),
        lambda xx: TF.batch_norm(xx.permute(0, 3, 1, 2), t_rm, t_rv, training=True),
        [x],
        rtol=1e-4,
        atol=1e-4,
    )
    assert_close(p_rm, t_rm, rtol=1e-5, atol=1e-6)
    assert_close(p_rv, t_rv, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- activations

ACTS = [
    ("relu", lambda m, x: m.relu(x)),
    ("relu6", lambda m, x: m.relu6(x)),
    ("leaky_relu_default", lambda m, x: m.leaky_relu(x)),
    ("leaky_relu_0.2", lambda m, x: m.leaky_relu(x, 0.2)),
    ("leaky_relu_kw", lambda m, x: m.leaky_relu(x, negative_slope=1.5)),
    ("gelu", lambda m, x: m.gelu(x)),
    ("gelu_tanh", lambda m, x: m.gelu(x, approximate="tanh")),
    ("gelu_none", lambda m, x: m.gelu(x, approximate="none")),
    ("sigmoid", lambda m, x: m.sigmoid(x)),
    ("tanh", lambda m, x: m.tanh(x)),
]


@pytest.mark.parametrize("name,fn", ACTS, ids=[a[0] for a in ACTS])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4, 5), (1, 1)])
def test_activation(name, fn, shape):
    x = (
        away_from_zero(shape, seed=26, margin=0.05) * 5
    )  # spans (-7.5, 7.5), avoids 0 and nothing at 6 exactly
    x = np.where(np.abs(x - 6) < 0.05, x + 0.2, x).astype(np.float32)
    check_op(lambda t: fn(F, t), lambda t: fn(TF, t), [x], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,fn", ACTS, ids=[a[0] for a in ACTS])
def test_activation_noncontiguous(name, fn):
    x = away_from_zero((4, 6), seed=27, margin=0.05) * 3
    check_op(lambda t: fn(F, t.t()[::2]), lambda t: fn(TF, t.t()[::2]), [x])


# ---------------------------------------------------------------- pooling

# (shape, kernel, stride, padding, dilation, ceil_mode)
MAXPOOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 2, 7, 7), 2, None, 0, 1, False),
    ((1, 2, 7, 7), 2, None, 0, 1, True),
    ((2, 1, 9, 9), 3, 2, 1, 1, False),
    ((2, 1, 9, 9), 3, 2, 1, 1, True),
    ((1, 3, 10, 8), 3, 2, 0, 1, True),
    ((1, 2, 11, 11), 3, 1, 1, 2, False),
    ((1, 2, 12, 10), 2, 2, 1, 2, True),
    ((2, 2, 6, 9), (2, 3), (1, 2), (1, 1), 1, False),
    ((1, 1, 5, 5), 5, 1, 0, 1, False),
    ((1, 4, 6, 6), 3, 3, 1, 1, True),
    ((1, 1, 8, 5), (3, 1), (2, 1), (1, 0), (1, 1), True),
    # channel counts oneDNN pools (the ones above take the small-channel loop): a plain
    # input is pooled channels-last
    ((2, 8, 9, 9), 3, 2, 1, 1, False),
    ((1, 16, 7, 10), 2, None, 0, 1, True),
    ((3, 24, 11, 11), 3, 1, 1, 2, False),
    ((2, 16, 12, 10), (2, 3), (1, 2), (1, 1), 1, True),
    # the direct loop's full 64-channel block, and a second block of 8 (issue 17: a plain input
    # keeps per-plane argmaxes so its backward scatters straight into a plain gradient)
    ((2, 64, 9, 9), 3, 2, 1, 1, False),
    ((1, 72, 7, 8), 2, None, 0, 1, True),
]


@pytest.mark.parametrize("case", MAXPOOL_CASES, ids=[str(c) for c in MAXPOOL_CASES])
def test_max_pool2d(case):
    shape, k, s, p, d, ceil = case
    # distinct values: a random permutation, so there are no ties in any window
    n = int(np.prod(shape))
    x = (np.random.default_rng(28).permutation(n).reshape(shape) / n - 0.5).astype(np.float32)
    check_op(
        lambda t: F.max_pool2d(t, k, stride=s, padding=p, dilation=d, ceil_mode=ceil),
        lambda t: TF.max_pool2d(t, k, stride=s, padding=p, dilation=d, ceil_mode=ceil),
        [x],
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize("channels", [6, 12, 70])
@pytest.mark.parametrize(
    "k, s, p, d, ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)]
)
def test_max_pool2d_after_a_convolution_matches_torch(channels, k, s, p, d, ceil):
    # A channel count the convolution's blocking would pad leaves it channels-last, and the
    # pool then takes its channels-last direct loop (6: unrolled; 12; 70: two channel blocks).
    x = randn((3, 4, 11, 10), seed=channels)
    w = randn((channels, 4, 1, 1), seed=channels + 1)
    (px, tx), (pw, tw) = pair(x), pair(w)
    py = F.max_pool2d(F.conv2d(px, pw), k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    ty = TF.max_pool2d(TF.conv2d(tx, tw), k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    g = randn(tuple(ty.shape), seed=7)
    py.backward(phalanx.from_numpy(g))
    ty.backward(torch.from_numpy(g))
    assert_close(py, ty)
    assert_close(px.grad, tx.grad, rtol=1e-4, atol=1e-4)
    assert_close(pw.grad, tw.grad, rtol=1e-4, atol=1e-3)


def test_max_pool2d_positional_and_negative_inputs():
    n = 2 * 3 * 6 * 6
    x = -(np.random.default_rng(29).permutation(n).reshape(2, 3, 6, 6) + 1).astype(np.float32)
    # all-negative inputs with padding: padded positions must never win
    check_op(
        lambda t: F.max_pool2d(t, 3, 2, 1),
        lambda t: TF.max_pool2d(t, 3, 2, 1),
        [x],
        rtol=1e-6,
        atol=1e-6,
    )


# (shape, kernel, stride, padding, ceil_mode, count_include_pad)
AVGPOOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0, False, True),
    ((1, 2, 7, 7), 2, None, 0, True, True),
    ((1, 2, 7, 7), 2, None, 0, True, False),
    ((2, 1, 9, 9), 3, 2, 1, False, True),
    ((2, 1, 9, 9), 3, 2, 1, False, False),
    ((2, 1, 9, 9), 3, 2, 1, True, True),
    ((2, 1, 9, 9), 3, 2, 1, True, False),
    ((1, 3, 10, 8), 3, 2, 0, True, True),
    ((2, 2, 6, 9), (2, 3), (1, 2), (1, 1), False, True),
    ((2, 2, 6, 9), (2, 3), (1, 2), (1, 1), True, False),
    ((1, 1, 5, 5), 5, 1, 0, False, True),
    ((1, 4, 6, 6), 3, 3, 1, True, True),
    ((1, 4, 6, 6), 3, 3, 1, True, False),
    ((1, 1, 8, 5), (3, 1), (2, 1), (1, 0), True, True),
]


@pytest.mark.parametrize("case", AVGPOOL_CASES, ids=[str(c) for c in AVGPOOL_CASES])
def test_avg_pool2d(case):
    shape, k, s, p, ceil, cip = case
    x = randn(shape, seed=30)
    check_op(
        lambda t: F.avg_pool2d(t, k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip),
        lambda t: TF.avg_pool2d(t, k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip),
        [x],
        rtol=1e-5,
        atol=1e-6,
    )


ADAPTIVE_CASES = [
    ((2, 3, 8, 8), (1, 1)),
    ((2, 3, 8, 8), 1),
    ((1, 2, 7, 7), 3),
    ((1, 2, 7, 9), (2, 4)),
    ((2, 1, 5, 6), (5, 6)),
    ((1, 3, 10, 7), (4, 3)),
    ((1, 1, 3, 3), (5, 5)),
]


@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES, ids=[f"{s}->{o}" for s, o in ADAPTIVE_CASES])
def test_adaptive_avg_pool2d(shape, out):
    x = randn(shape, seed=31)
    check_op(
        lambda t: F.adaptive_avg_pool2d(t, out),
        lambda t: TF.adaptive_avg_pool2d(t, out),
        [x],
        rtol=1e-5,
        atol=1e-6,
    )


def test_pooling_noncontiguous_input():
    x = randn((2, 6, 6, 3), seed=32)
    check_op(
        lambda t: F.max_pool2d(t.permute(0, 3, 1, 2), 2),
        lambda t: TF.max_pool2d(t.permute(0, 3, 1, 2), 2),
        [x],
    )
    check_op(
        lambda t: F.avg_pool2d(t.permute(0, 3, 1, 2), 3, 1, 1),
        lambda t: TF.avg_pool2d(t.permute(0, 3, 1, 2), 3, 1, 1),
        [x],
    )


# ---------------------------------------------------------------- softmax

SOFTMAX_CASES = [
    ((5,), 0),
    ((3, 7), 1),
    ((3, 7), 0),
    ((3, 7), -1),
    ((2, 3, 4, 5), 1),
    ((2, 3, 4, 5), -1),
    ((2, 3, 4, 5), 2),
    ((1, 1), 1),
    ((4, 10), -2),
]


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES, ids=[f"{s}-{d}" for s, d in SOFTMAX_CASES])
def test_softmax(fn, shape, dim):
    x = randn(shape, seed=33, scale=3.0)
    check_op(
        lambda t: getattr(F, fn)(t, dim),
        lambda t: getattr(TF, fn)(t, dim),
        [x],
        rtol=1e-4,
        atol=1e-5,
    )
    check_op(
        lambda t: getattr(F, fn)(t, dim=dim),
        lambda t: getattr(TF, fn)(t, dim=dim),
        [x],
        rtol=1e-4,
        atol=1e-5,
    )


def test_softmax_large_values_stable():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0]], np.float32)
    check_op(lambda t: F.softmax(t, 1), lambda t: TF.softmax(t, 1), [x])
    check_op(lambda t: F.log_softmax(t, 1), lambda t: TF.log_softmax(t, 1), [x])


def test_softmax_noncontiguous():
    x = randn((4, 5, 3), seed=34)
    check_op(
        lambda t: F.softmax(t.transpose(0, 2), 1), lambda t: TF.softmax(t.transpose(0, 2), 1), [x]
    )
    check_op(lambda t: F.log_softmax(t[:, ::2], 0), lambda t: TF.log_softmax(t[:, ::2], 0), [x])


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    phalanx.manual_seed(1234)
    x = phalanx.tensor(uniform((200, 250), seed=35, low=0.5, high=1.5))
    y = F.dropout(x, p=p, training=True)
    xa, ya = to_numpy(x), to_numpy(y)
    zero = ya == 0
    frac = zero.mean()
    assert abs(frac - p) < 0.01, f"zeroed fraction {frac} for p={p}"
    np.testing.assert_allclose(ya[~zero], xa[~zero] / (1 - p), rtol=1e-6)


def test_dropout_eval_identity_and_p0():
    xa = randn((4, 5), seed=36)
    x = phalanx.tensor(xa)
    assert_close(F.dropout(x, p=0.5, training=False), xa, rtol=0, atol=0)
    assert_close(F.dropout(x, 0.3, False), xa, rtol=0, atol=0)
    assert_close(F.dropout(x, p=0.0, training=True), xa, rtol=0, atol=0)
    z = F.dropout(x, p=1.0, training=True)
    assert (to_numpy(z) == 0).all()


def test_dropout_default_args():
    phalanx.manual_seed(5)
    x = phalanx.ones(100, 100)
    y = to_numpy(F.dropout(x))  # p=0.5, training=True
    assert abs((y == 0).mean() - 0.5) < 0.02
    assert set(np.unique(y).tolist()) == {0.0, 2.0}


@pytest.mark.parametrize("p", [0.25, 0.6])
def test_dropout_gradient_is_mask_times_scale(p):
    phalanx.manual_seed(7)
    xa = uniform((30, 40), seed=37, low=0.5, high=1.5)
    x = phalanx.tensor(xa, requires_grad=True)
    y = F.dropout(x, p=p, training=True)
    g = upstream_grad((30, 40))
    y.backward(phalanx.tensor(g))
    mask = (to_numpy(y) != 0).astype(np.float32)
    assert 0 < mask.mean() < 1
    assert_close(x.grad, g * mask / (1 - p), rtol=1e-6, atol=1e-7)


def test_dropout_reproducible_with_manual_seed():
    x = phalanx.ones(50, 50)
    phalanx.manual_seed(99)
    a = to_numpy(F.dropout(x, 0.5, True)).copy()
    b = to_numpy(F.dropout(x, 0.5, True)).copy()
    phalanx.manual_seed(99)
    c = to_numpy(F.dropout(x, 0.5, True)).copy()
    np.testing.assert_array_equal(a, c)
    assert (a != b).any(), "consecutive dropout calls must use different masks"


def test_dropout_does_not_modify_input():
    xa = randn((10, 10), seed=38)
    x = phalanx.tensor(xa)
    phalanx.manual_seed(0)
    F.dropout(x, 0.5, True)
    assert_close(x, xa, rtol=0, atol=0)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 4)], ids=str)
def test_batch_norm_affine_forward_only(shape, training):
    """Affine batch norm without autograd: output and running statistics."""
    c = shape[1]
    x = randn(shape, seed=40, scale=2.0) + 0.5
    w, b = uniform((c,), seed=41, low=0.5, high=1.5), randn((c,), seed=42)
    rm, rv = randn((c,), seed=43, scale=0.3), uniform((c,), seed=44, low=0.5, high=2.0)
    p_rm, p_rv, t_rm, t_rv = (
        phalanx.tensor(rm.copy()),
        phalanx.tensor(rv.copy()),
        torch.tensor(rm.copy()),
        torch.tensor(rv.copy()),
    )
    po = F.batch_norm(
        phalanx.tensor(x), p_rm, p_rv, phalanx.tensor(w), phalanx.tensor(b), training=training
    )
    to = TF.batch_norm(
        torch.tensor(x), t_rm, t_rv, torch.tensor(w), torch.tensor(b), training=training
    )
    assert_close(po, to, rtol=1e-4, atol=1e-4)
    assert_close(p_rm, t_rm, rtol=1e-5, atol=1e-6)
    assert_close(p_rv, t_rv, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("which", ["weight", "bias"])
def test_batch_norm_affine_param_grad_only(which):
    x = randn((3, 2, 4, 4), seed=45)
    w, b = uniform((2,), seed=46, low=0.5, high=1.5), randn((2,), seed=47)
    check_op(
        lambda xx, ww, bb: F.batch_norm(xx, None, None, ww, bb, training=True),
        lambda xx, ww, bb: TF.batch_norm(xx, None, None, ww, bb, training=True),
        [x, w, b],
        requires_grad=[False, which == "weight", which == "bias"],
        rtol=1e-4,
        atol=1e-4,
    )


def test_dropout_eval_passes_gradient_through():
    xa = randn((3, 4), seed=48)
    x = phalanx.tensor(xa, requires_grad=True)
    g = upstream_grad((3, 4))
    F.dropout(x, 0.5, training=False).backward(phalanx.tensor(g))
    assert_close(x.grad, g, rtol=0, atol=0)


@pytest.mark.parametrize("threads", [1, 2])
def test_num_threads_results_identical(threads):
    old = phalanx.get_num_threads()
    try:
        phalanx.set_num_threads(threads)
        assert phalanx.get_num_threads() == threads
        x, w = randn((2, 3, 9, 9), seed=49), randn((4, 3, 3, 3), seed=50)
        check_op(
            lambda a, b: F.conv2d(a, b, padding=1),
            lambda a, b: TF.conv2d(a, b, padding=1),
            [x, w],
            **CONV_TOL,
        )
        check_op(phalanx.matmul, torch.matmul, [randn((5, 7), seed=51), randn((7, 3), seed=52)])
    finally:
        phalanx.set_num_threads(old)
    assert phalanx.get_num_threads() == old


def test_square_function_method_and_in_place():
    x = randn((3, 4), seed=30)
    check_op(phalanx.square, torch.square, [x])
    check_op(lambda a: a.square(), lambda a: a.square(), [x])
    check_op(lambda a: (a * 1).square_(), lambda a: (a * 1).square_(), [x])
    ints = phalanx.tensor([[-3, 2], [0, 5]])
    assert ints.square().dtype == phalanx.int64
    assert ints.square().tolist() == [[9, 4], [0, 25]]
