"""Batch norm + ReLU fused into one oneDNN pass (fuse_norm_relu, issue 17): where an
nn.Sequential or a model zoo block has a BatchNorm followed by a ReLU. Exact against the
unfused path (forced by a forward hook, which must see the intermediate value) and matching
PyTorch, forward, gradients and running statistics."""

import numpy as np
import pytest
from conftest import CONV_IS_BLOCKED, assert_close, randn

import phalanx
import phalanx.models as models
import phalanx.nn as nn

torch = pytest.importorskip("torch")


def conv_bn_relu(framework, train=True):
    m = framework.nn.Sequential(
        framework.nn.Conv2d(3, 16, 3, padding=1, bias=False),
        framework.nn.BatchNorm2d(16),
        framework.nn.ReLU(inplace=True),
        framework.nn.Conv2d(16, 8, 3),
    )
    return m.train(train)


def run(model, x, fw):
    xi = fw.from_numpy(x.copy())
    xi.requires_grad_(True)
    y = model(xi)
    y.sum().backward()
    return y, xi


def snapshot(model, y, xi):
    grads = [np.array(p.grad.numpy()) for p in model.parameters()]
    buffers = [np.array(b.numpy()) for b in model.buffers()]
    return [np.array(y.detach().numpy()), np.array(xi.grad.numpy()), *grads, *buffers]


def unfused(model):
    # a hook must see the batch norm's own output, so the module runs on its own
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(lambda *a: None)
    return model


@pytest.mark.parametrize("train", [True, False])
def test_sequential_bn_relu_is_fused_and_exact(train):
    x = randn((4, 3, 10, 10), seed=1)
    results = []
    for fuse in (True, False):
        phalanx.manual_seed(0)
        model = conv_bn_relu(phalanx, train)
        if not fuse:
            unfused(model)
        y, xi = run(model, x, phalanx)
        results.append(snapshot(model, y, xi))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fused_node_replaces_the_two():
    phalanx.manual_seed(0)
    model = conv_bn_relu(phalanx)
    h = model[0](phalanx.from_numpy(randn((2, 3, 6, 6), seed=2)))
    # a convolution's output: blocked on x86-64, where the fused path applies; plain on aarch64,
    # where batch norm runs phalanx's plain kernel and the ReLU after it
    assert h._is_blocked == CONV_IS_BLOCKED
    y = model[1]._forward_relu(h)
    assert ("NativeBatchNormReluBackward" in repr(y.grad_fn)) == CONV_IS_BLOCKED
    # a plain input (no convolution before) is the two ops in turn, still right
    plain = phalanx.from_numpy(randn((2, 16, 6, 6), seed=3))
    assert "NativeBatchNormReluBackward" not in repr(model[1]._forward_relu(plain).grad_fn)


@pytest.mark.parametrize("train", [True, False])
def test_sequential_bn_relu_matches_torch(train):
    x = randn((4, 3, 10, 10), seed=4)
    phalanx.manual_seed(0)
    pm = conv_bn_relu(phalanx, train)
    tm = conv_bn_relu(torch, train)
    with phalanx.no_grad():  # running statistics other than the initial ones (eval uses them)
        pm[1].running_mean.add_(0.3)
        pm[1].running_var.mul_(1.5)
    with torch.no_grad():
        for v, tv in zip(pm.state_dict().values(), tm.state_dict().values(), strict=True):
            tv.copy_(torch.from_numpy(np.array(v.numpy())).reshape(tv.shape))
    p = snapshot(pm, *run(pm, x, phalanx))
    t = snapshot(tm, *run(tm, x, torch))
    for a, b in zip(p, t, strict=True):
        assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_resnet_blocks_fuse_exactly():
    x = randn((2, 3, 32, 32), seed=5)
    results = []
    for fuse in (True, False):
        phalanx.manual_seed(0)
        model = models.resnet18(num_classes=10, stem="cifar")
        if not fuse:
            unfused(model)
        results.append(snapshot(model, *run(model, x, phalanx)))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("where", ["input", "running_var"])
def test_nan_reaches_the_output_as_unfused(train, where):
    """fuse_norm_relu maps NaN to 0 where ReLU keeps it: a non-finite input (or statistic)
    runs batch norm and ReLU in turn, so a NaN pixel still reaches the loss."""
    x = randn((2, 3, 6, 6), seed=6)
    if where == "input":
        x[0, 0, 2, 2] = np.nan
    results = []
    for fuse in (True, False):
        phalanx.manual_seed(0)
        model = conv_bn_relu(phalanx, train)
        if where == "running_var":
            with phalanx.no_grad():
                model[1].running_var.fill_(float("nan"))
        if not fuse:
            unfused(model)
        results.append(snapshot(model, *run(model, x, phalanx)))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
    if where == "input" or not train:  # training normalises with the batch's statistics
        assert np.isnan(results[0][0]).any()
