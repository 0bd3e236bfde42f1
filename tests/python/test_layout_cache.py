"""Blocked layouts between oneDNN ops: cached blocked weights (never stale), channels-last for
channel counts the blocking would pad, and residual adds that stay blocked.

Expected values come from numpy alone, so computing them cannot refresh or drop a cache."""

import numpy as np
import pytest
from conftest import CONV_IS_BLOCKED

import phalanx
import phalanx.models
import phalanx.nn.functional as F
from phalanx import _C

# What one convolution with a changed weight reorders: 1 on x86-64; 0 where the convolution
# reads the plain weight as it is (aarch64), so there the cache has nothing to keep.
REORDERS_PER_CHANGE = 1 if CONV_IS_BLOCKED else 0


def np_conv2d(x, w, padding=1):
    """Stride-1 cross-correlation in float64, the reference for phalanx's conv2d."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", x[:, :, i : i + oh, j : j + ow], w[:, :, i, j])
    return out


def weight_reorders():
    return _C._reorder_counts()["weights"]


def value(t):
    return np.array(t.detach().numpy())  # a copy: the view dies at once


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((2, 16, 6, 6), dtype=np.float32)
    wa = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    # phalanx.tensor(ndarray) would keep numpy memory (never cached); clone() is phalanx's own
    w = phalanx.nn.Parameter(phalanx.from_numpy(wa).clone())
    # direct kernels, whose backward-data reads the weight in a blocking of its own (the
    # copies counted here); Winograd's reads the forward's (ops/conv.cc, winograd_pays)
    winograd = phalanx.backends.onednn.allow_winograd
    phalanx.backends.onednn.allow_winograd = False
    yield phalanx.from_numpy(xa), xa, w, wa
    phalanx.backends.onednn.allow_winograd = winograd


def check(out, xa, wa):
    np.testing.assert_allclose(value(out), np_conv2d(xa, wa), rtol=1e-4, atol=1e-4)


def test_an_unchanged_weight_is_reordered_once_and_again_after_a_step(setup):
    x, xa, w, wa = setup
    opt = phalanx.optim.SGD([w], lr=0.1)
    with phalanx.no_grad():
        F.conv2d(x, w, padding=1)
        before = weight_reorders()
        out = F.conv2d(x, w, padding=1)
        assert weight_reorders() == before
    check(out, xa, wa)
    w.grad = phalanx.ones_like(w)
    opt.step()
    with phalanx.no_grad():
        before = weight_reorders()
        out = F.conv2d(x, w, padding=1)
        assert weight_reorders() == before + REORDERS_PER_CHANGE
        F.conv2d(x, w, padding=1)
        assert weight_reorders() == before + REORDERS_PER_CHANGE
    check(out, xa, wa - 0.1)


def test_writes_through_detached_aliases_and_in_place_ops_are_seen(setup):
    x, xa, w, wa = setup
    with phalanx.no_grad():
        F.conv2d(x, w, padding=1)
        w.detach().mul_(2.0)  # phalanx has no .data: detach() is the same storage
        check(F.conv2d(x, w, padding=1), xa, wa * 2)
        w.detach()[0, 0, 0, 0] = 5.0
        wa2 = wa * 2
        wa2[0, 0, 0, 0] = 5.0
        check(F.conv2d(x, w, padding=1), xa, wa2)
        w.zero_()
        check(F.conv2d(x, w, padding=1), xa, wa * 0)
        w.copy_(phalanx.from_numpy(wa))
        check(F.conv2d(x, w, padding=1), xa, wa)


def test_writes_through_a_numpy_view_are_seen(setup):
    x, xa, w, wa = setup
    with phalanx.no_grad():
        F.conv2d(x, w, padding=1)
        view = w.detach().numpy()
        view *= 3.0  # no version bump: numpy cannot tell us
        check(F.conv2d(x, w, padding=1), xa, wa * 3)
        view[1] = 0.0  # the view is still alive: a write after a forward
        wa3 = wa * 3
        wa3[1] = 0.0
        check(F.conv2d(x, w, padding=1), xa, wa3)
        view[2] = 1.0  # the last write, then the view goes
        wa3[2] = 1.0
        del view
        check(F.conv2d(x, w, padding=1), xa, wa3)
        before = weight_reorders()
        check(F.conv2d(x, w, padding=1), xa, wa3)
        assert weight_reorders() == before  # cached again once no view is left


def test_a_weight_over_numpy_memory_is_never_cached(setup):
    x, xa, _, wa = setup
    arr = wa.copy()
    w = phalanx.from_numpy(arr)  # shares arr's memory
    with phalanx.no_grad():
        check(F.conv2d(x, w, padding=1), xa, arr)
        arr[:] = 0.25
        check(F.conv2d(x, w, padding=1), xa, arr)


def np_input_grad(dy, w):
    """d(sum(dy * conv2d(x, w, padding=1)))/dx: the correlation of dy with the flipped,
    transposed kernel."""
    return np_conv2d(dy, np.flip(w, (2, 3)).transpose(1, 0, 2, 3))


def test_a_frozen_weight_is_cached_and_a_trained_ones_backward_copy_follows_its_updates(setup):
    x, xa, w, wa = setup
    x = x.clone().requires_grad_(True)
    w.requires_grad_(False)
    F.conv2d(x, w, padding=1).sum().backward()
    before = weight_reorders()
    F.conv2d(x, w, padding=1).sum().backward()  # forward and backward-data layouts cached
    assert weight_reorders() == before
    # a weight being trained is kept in the convolution's layout (ops/conv.h): after the
    # first forward adopts it, the forward does not reorder it; the backward-data kernel
    # wants it blocked the other way round on x86-64 (OIhw16o16i): reordered once, cached
    w.requires_grad_(True)
    opt = phalanx.optim.SGD([w], lr=0.01, momentum=0.9)
    F.conv2d(x, w, padding=1).sum().backward()
    ones = np.ones((2, 16, 6, 6))
    xp = np.pad(xa.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.stack(
        [
            np.einsum("nchw,nohw->oc", xp[:, :, i : i + 6, j : j + 6], ones)
            for i in range(3)
            for j in range(3)
        ],
        axis=-1,
    ).reshape(16, 16, 3, 3)
    np.testing.assert_allclose(value(w.grad), want, rtol=1e-4, atol=1e-4)
    # the optimizer writes the backward's copy alongside the weight (WeightTwins): steps
    # after the first reorder no weight, and every input gradient is the updated weight's
    expected, momentum = wa.astype(np.float64), np.zeros_like(wa, dtype=np.float64)
    for _ in range(3):
        momentum = 0.9 * momentum + want if momentum.any() else want.copy()
        expected = expected - 0.01 * momentum
        opt.step()
        opt.zero_grad()
        x.grad = None
        before = weight_reorders()
        y = F.conv2d(x, w, padding=1)
        y.sum().backward()
        assert weight_reorders() == before
        np.testing.assert_allclose(
            value(x.grad), np_input_grad(ones, expected), rtol=1e-4, atol=1e-3
        )
    # a write the optimizer did not make (an alias of the weight) drops the copy: reordered
    # again, from the new values
    with phalanx.no_grad():
        w.detach().mul_(0.5)
    x.grad = None
    before = weight_reorders()
    F.conv2d(x, w, padding=1).sum().backward()
    assert weight_reorders() == before + REORDERS_PER_CHANGE
    np.testing.assert_allclose(
        value(x.grad), np_input_grad(ones, expected * 0.5), rtol=1e-4, atol=1e-3
    )
    check(F.conv2d(x, w, padding=1), xa, expected * 0.5)  # the kept weight read back


def test_a_model_in_eval_matches_before_and_after_a_step():
    phalanx.manual_seed(0)
    model = phalanx.models.resnet18(10, stem="cifar")
    opt = phalanx.optim.SGD(model.parameters(), lr=0.05)
    rng = np.random.default_rng(1)
    x = phalanx.from_numpy(rng.standard_normal((2, 3, 16, 16), dtype=np.float32))
    model.eval()
    with phalanx.no_grad():
        a = value(model(x))
        b = value(model(x))  # from the cached weights
    np.testing.assert_array_equal(a, b)
    model.train()
    F.cross_entropy(model(x), phalanx.tensor([1, 2])).backward()
    opt.step()
    model.eval()
    with phalanx.no_grad():
        c = value(model(x))
        state = {k: np.array(v.numpy()) for k, v in model.state_dict().items()}
    fresh = phalanx.models.resnet18(10, stem="cifar")  # same values, nothing cached
    fresh.load_state_dict({k: phalanx.tensor(v) for k, v in state.items()})
    fresh.eval()
    with phalanx.no_grad():
        np.testing.assert_allclose(c, value(fresh(x)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(a, c)


def test_padded_channel_counts_run_channels_last_and_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((4, 1, 12, 12), dtype=np.float32)
    wa = rng.standard_normal((6, 1, 5, 5), dtype=np.float32)
    w2a = rng.standard_normal((16, 6, 3, 3), dtype=np.float32)

    def run(lib, f, tensor):
        x, w, w2 = (tensor(a).requires_grad_(True) for a in (xa, wa, w2a))
        y = f.conv2d(f.max_pool2d(f.relu(f.conv2d(x, w)), 2), w2)
        y.sum().backward()
        return [np.array(t.detach().numpy()) for t in (y, x.grad, w.grad, w2.grad)]

    before = _C._reorder_counts()["to_plain"]
    got = run(phalanx, F, phalanx.tensor)
    assert _C._reorder_counts()["to_plain"] - before <= 4  # the outputs read by numpy only
    want = run(torch, torch.nn.functional, torch.tensor)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


def test_residual_adds_and_gradient_sums_stay_blocked():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s, dtype=np.float32) for s in ((2, 16, 8, 8), (16, 16, 3, 3))]
    arrays.append(rng.standard_normal((16, 16, 3, 3), dtype=np.float32))

    def run(f, tensor, counts=None):
        x, w1, w2 = (tensor(a).clone().requires_grad_(True) for a in arrays)
        h = f.relu(f.conv2d(x, w1, padding=1))
        before = counts() if counts else None
        y = f.relu(f.conv2d(h, w2, padding=1) + h)  # the residual add; h's gradient is a sum
        z = f.conv2d(y, w2, padding=1)
        if counts:  # neither operand of the add went plain, nor its result
            after = counts()
            assert (after["to_plain"], after["data"]) == (before["to_plain"], before["data"])
        z.backward(tensor(np.ones(z.shape, np.float32)))
        return [np.array(t.detach().numpy()) for t in (z, x.grad, w1.grad, w2.grad)]

    got = run(F, phalanx.tensor, lambda: dict(_C._reorder_counts()))
    want = run(torch.nn.functional, torch.tensor)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("image_needs_grad", [False, True])
def test_a_first_layer_reads_the_plain_image_and_writes_the_blocking(image_needs_grad):
    """3 input channels, 64 output: the convolution reads the image as numpy gave it and writes
    the blocked layout the next layers read (x86-64), so neither the image nor the next layer's
    input crosses layouts. An image that needs a gradient gets it from a kernel that writes its
    own layout (oneDNN has no JIT backward-data into a plain 3-channel input)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    xa = rng.standard_normal((4, 3, 20, 20), dtype=np.float32)
    w1a = (rng.standard_normal((64, 3, 3, 3)) * 0.2).astype(np.float32)
    w2a = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)

    def run(f, tensor, counts=None):
        x = tensor(xa).clone().requires_grad_(image_needs_grad)
        w1, w2 = (tensor(a).clone().requires_grad_(True) for a in (w1a, w2a))
        f.conv2d(x, w1, padding=1)  # primitives made, weights adopted
        before = counts() if counts else None
        h = f.conv2d(x, w1, padding=1)
        y = f.conv2d(f.relu(h), w2, padding=1)
        if counts:
            assert counts()["data"] == before["data"], "the image or h was reordered"
            assert h._is_blocked == CONV_IS_BLOCKED
        y.backward(tensor(np.ones(y.shape, np.float32)))
        out = [y, w1.grad, w2.grad] + ([x.grad] if image_needs_grad else [])
        return [np.array(t.detach().numpy()) for t in out]

    got = run(F, phalanx.tensor, lambda: dict(_C._reorder_counts()))
    want = run(torch.nn.functional, torch.tensor)
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-3 * np.abs(e).max())


def data_reorders_per_step(model, opt, x, y, steps=3):
    """The data reorders of each of `steps` training steps (cross-entropy, backward, step)."""
    per_step = []
    for _ in range(steps):
        before = _C._reorder_counts()["data"]
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        per_step.append(_C._reorder_counts()["data"] - before)
    return per_step


def test_resnet18_steps_cross_layouts_at_most_once():
    """A ResNet-18 (CIFAR stem) training step: one data reorder at most on oneDNN 2.x (the
    pooled features' gradient going back into the pool's layout), with Winograd kernels taken
    or not. oneDNN 3.x (make test-onednn3) runs the stride-2 convolutions' backward-data on
    `brgconv_strided`, which takes channels-last: 2 reorders each there (10 a step; a gap
    left open, see docs/speed.md); the count must still be the same every step."""
    phalanx.manual_seed(0)
    model = phalanx.models.resnet18(10, stem="cifar")
    opt = phalanx.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(6)
    x = phalanx.from_numpy(rng.standard_normal((16, 3, 32, 32), dtype=np.float32))
    y = phalanx.from_numpy(rng.integers(0, 10, 16))
    per_step = data_reorders_per_step(model, opt, x, y)
    assert per_step[1] == per_step[2], per_step
    if _C._onednn_version()[0] == 2:
        assert per_step[2] <= 1, per_step


def test_lenet5_steps_cross_layouts_once():
    """LeNet-5's second convolution takes 6 channels from inside the network: it runs
    channels-last like the first (not oneDNN's first-layer kernel, which read its input plain
    and left its backward to pick layouts of its own: 4 data reorders a step). What is left is
    the pooled features' gradient going back into the pool's layout, as in ResNet-18."""
    phalanx.manual_seed(0)
    model = phalanx.models.LeNet5()
    opt = phalanx.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(7)
    x = phalanx.from_numpy(rng.standard_normal((8, 1, 28, 28), dtype=np.float32))
    y = phalanx.from_numpy(rng.integers(0, 10, 8))
    per_step = data_reorders_per_step(model, opt, x, y)
    assert per_step[1] == per_step[2], per_step
    if CONV_IS_BLOCKED:
        assert per_step[2] <= 1, per_step
