"""Batch norm on a convolution's channel-blocked output (nChw16c / nChw8c), which phalanx
normalises with its own loops (csrc/ops/batch_norm_blocked.h): results against PyTorch, and
accuracy against float64. oneDNN 2.6's kernel summed over the whole feature map in float: its
batch mean was ~40x and dgamma ~10x further from float64 than PyTorch's float32."""

import platform

import numpy as np
import pytest
from conftest import CONV_IS_BLOCKED, assert_close, rng

import phalanx
import phalanx.nn as nn

torch = pytest.importorskip("torch")


def conv_bn(fw, cin, cout, fused, train, dtype=None):
    layers = [fw.nn.Conv2d(cin, cout, 3, padding=1, bias=False), fw.nn.BatchNorm2d(cout)]
    if fused:
        layers.append(fw.nn.ReLU())
    m = fw.nn.Sequential(*layers).train(train)
    return m.double() if dtype == "float64" else m


def copy_state(src, dst):
    with torch.no_grad():
        for v, tv in zip(src.state_dict().values(), dst.state_dict().values(), strict=True):
            tv.copy_(torch.from_numpy(np.array(v.numpy())).reshape(tv.shape).to(tv.dtype))


def step(model, fw, x, g):
    xi = fw.from_numpy(x.copy())
    xi.requires_grad_(True)
    y = model(xi)
    (y * fw.from_numpy(g)).sum().backward()
    out = [y.detach().numpy(), xi.grad.numpy()]
    out += [p.grad.numpy() for p in model.parameters()]
    out += [b.numpy() for b in model.buffers() if b.dtype != fw.int64]
    return [np.array(a, dtype=np.float64) for a in out]


def check_layout(model, x):
    """On aarch64 the convolution writes plain NCHW (conftest.CONV_IS_BLOCKED): there these
    tests check the plain batch norm the phones run, and the blocked loops are checked by the
    GoogleTest (tests/cpp/test_batch_norm_blocked.cc), which calls them directly."""
    blocked = model[0](phalanx.from_numpy(x))._is_blocked
    assert blocked == CONV_IS_BLOCKED, (
        f"convolution output blocked={blocked} on {platform.machine()}"
    )


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("shape", [(3, 5, 7, 9, 16), (2, 3, 11, 6, 20), (5, 4, 5, 5, 37)])
def test_blocked_batch_norm_matches_torch(shape, fused, train):
    """Whole blocks and padded ones (20, 37 channels), odd maps, with and without the fused
    ReLU, training and eval (running statistics moved off their initial values)."""
    n, cin, h, w, cout = shape
    r = rng(sum(shape))
    x = (r.standard_normal((n, cin, h, w)) + 0.5).astype(np.float32)
    g = r.standard_normal((n, cout, h, w)).astype(np.float32)
    phalanx.manual_seed(0)
    pm = conv_bn(phalanx, cin, cout, fused, train)
    with phalanx.no_grad():
        pm[1].running_mean.add_(0.3)
        pm[1].running_var.mul_(1.5)
        pm[1].weight.copy_(phalanx.from_numpy(r.uniform(0.5, 1.5, cout).astype(np.float32)))
        pm[1].bias.copy_(phalanx.from_numpy(r.uniform(-0.5, 0.5, cout).astype(np.float32)))
    check_layout(pm, x)  # the case under test: a blocked input to the batch norm (x86-64)
    tm = conv_bn(torch, cin, cout, fused, train)
    copy_state(pm, tm)
    for a, b in zip(step(pm, phalanx, x, g), step(tm, torch, x, g), strict=True):
        assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fused", [False, True])
def test_blocked_batch_norm_is_as_accurate_as_torch(fused):
    """conv -> batch norm (training) -> ReLU at 32x32x32x32 on an input of positive mean: the
    batch mean (running_mean after one step from 0 with momentum 1), dgamma and dbeta within
    5x of PyTorch float32's distance from the float64 result."""
    r = rng(7)
    x = (r.standard_normal((32, 16, 32, 32)) + 0.5).astype(np.float32)
    g = r.standard_normal((32, 32, 32, 32)).astype(np.float32)
    phalanx.manual_seed(0)
    pm = conv_bn(phalanx, 16, 32, fused, True)
    pm[1].momentum = 1.0
    if not fused:  # keeps the ReLU after the batch norm, as its own op
        pm.append(nn.ReLU())
    check_layout(pm, x)
    t32 = conv_bn(torch, 16, 32, True, True)
    t64 = conv_bn(torch, 16, 32, True, True, dtype="float64")
    for t in (t32, t64):
        copy_state(pm, t)
        t[1].momentum = 1.0
    p = step(pm, phalanx, x, g)
    f32 = step(t32, torch, x, g)
    f64 = step(t64, torch, x.astype(np.float64), g.astype(np.float64))
    # parameters: conv weight, bn weight, bn bias; then buffers: running mean, running var
    for name, i in [("dgamma", 3), ("dbeta", 4), ("batch mean", 5), ("batch var", 6)]:
        scale = np.abs(f64[i]).max()
        err_torch = np.abs(f32[i] - f64[i]).max() / scale
        err = np.abs(p[i] - f64[i]).max() / scale
        assert err <= 5 * max(err_torch, 2e-8), (name, err, err_torch)
