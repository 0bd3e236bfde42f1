"""Convolution + ReLU fused into one oneDNN pass (a ReLU post-op, issue 17): where an
nn.Sequential has a Conv2d followed by a ReLU (LeNet-5's features). Exact against the unfused
path (forced by a forward hook, which must see the convolution's own output), NaN included,
and matching PyTorch, forward and gradients."""

import numpy as np
import pytest
from conftest import assert_close, randn

import phalanx
import phalanx.models as models
import phalanx.nn as nn

torch = pytest.importorskip("torch")

# (in, out, kernel, keywords): LeNet's 6 channels (a channels-last layout), 16 (blocked),
# no bias, stride and padding, groups
CONFIGS = [
    (3, 6, 5, {"padding": 2}),
    (3, 16, 3, {"bias": False}),
    (4, 16, 3, {"stride": 2, "padding": 1}),
    (4, 8, 3, {"groups": 2, "padding": 1}),
]


def conv_relu_stack(fw, cin, cout, k, kw):
    return fw.nn.Sequential(
        fw.nn.Conv2d(cin, cout, k, **kw),
        fw.nn.ReLU(),
        fw.nn.Conv2d(cout, 8, 3),
        fw.nn.ReLU(inplace=True),
    )


def run(model, x, fw):
    xi = fw.from_numpy(x.copy())
    xi.requires_grad_(True)
    y = model(xi)
    (y * y).sum().backward()  # a gradient that differs per element
    return y, xi


def snapshot(model, y, xi):
    grads = [np.array(p.grad.numpy()) for p in model.parameters()]
    return [np.array(y.detach().numpy()), np.array(xi.grad.numpy()), *grads]


def unfused(model):
    # a hook must see the convolution's own output, so the module runs on its own
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda *a: None)
    return model


def fused_and_unfused(make, x):
    results = []
    for fuse in (True, False):
        phalanx.manual_seed(0)
        model = make()
        if not fuse:
            unfused(model)
        results.append(snapshot(model, *run(model, x, phalanx)))
    return results


@pytest.mark.parametrize("cin,cout,k,kw", CONFIGS)
def test_sequential_conv_relu_is_exact(cin, cout, k, kw):
    x = randn((3, cin, 11, 11), seed=1)
    fused, plain = fused_and_unfused(lambda: conv_relu_stack(phalanx, cin, cout, k, kw), x)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cin,cout,k,kw", CONFIGS)
def test_sequential_conv_relu_matches_torch(cin, cout, k, kw):
    x = randn((3, cin, 11, 11), seed=2)
    phalanx.manual_seed(0)
    pm = conv_relu_stack(phalanx, cin, cout, k, kw)
    tm = conv_relu_stack(torch, cin, cout, k, kw)
    with torch.no_grad():
        for v, tv in zip(pm.state_dict().values(), tm.state_dict().values(), strict=True):
            tv.copy_(torch.from_numpy(np.array(v.numpy())))
    p = snapshot(pm, *run(pm, x, phalanx))
    t = snapshot(tm, *run(tm, x, torch))
    for a, b in zip(p, t, strict=True):
        assert_close(a, b, rtol=1e-4, atol=1e-4)


def conv_then_relu():
    phalanx.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU())


@pytest.mark.parametrize("hooked,kind", [(0, "forward"), (0, "forward_pre"), (1, "forward")])
def test_a_hook_on_either_module_disables_the_fusion(hooked, kind):
    x = phalanx.from_numpy(randn((2, 3, 8, 8), seed=3))
    assert "ConvolutionReluBackward" in repr(conv_then_relu()(x).grad_fn)
    model, seen = conv_then_relu(), []
    getattr(model[hooked], f"register_{kind}_hook")(lambda *a: seen.append(1))
    y = model(x)
    assert seen and "ReluBackward" in repr(y.grad_fn)
    assert "ConvolutionReluBackward" not in repr(y.grad_fn)
    np.testing.assert_array_equal(y.detach().numpy(), conv_then_relu()(x).detach().numpy())


def test_subclasses_are_not_fused():
    class MyReLU(nn.ReLU):  # may compute something else
        pass

    x = phalanx.from_numpy(randn((2, 3, 8, 8), seed=3))
    assert "ConvolutionReluBackward" not in repr(
        nn.Sequential(nn.Conv2d(3, 4, 3), MyReLU())(x).grad_fn
    )


def test_lenet_features_are_fused_and_exact():
    x = randn((4, 1, 28, 28), seed=4)
    fused, plain = fused_and_unfused(models.LeNet5, x)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    phalanx.manual_seed(0)
    features = models.LeNet5().features
    y = features[:2](phalanx.from_numpy(x))
    assert "ConvolutionReluBackward" in repr(y.grad_fn)


@pytest.mark.parametrize("special", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["input", "weight", "bias"])
def test_non_finite_values_flow_as_unfused(special, where):
    """oneDNN's ReLU post-op would map NaN to 0: a non-finite input, weight or bias takes
    the two ops in turn, so NaN reaches the loss as in PyTorch."""
    x = randn((2, 3, 9, 9), seed=5)
    if where == "input":
        x[1, 0, 4, 4] = special

    def make():
        m = conv_relu_stack(phalanx, 3, 16, 3, {"padding": 1})
        if where != "input":
            param = getattr(m[0], where)
            values = np.array(param.detach().numpy())
            values.reshape(-1)[3] = special
            with phalanx.no_grad():
                param.copy_(phalanx.from_numpy(values))
        return m

    fused, plain = fused_and_unfused(make, x)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a, b)  # NaN in the same places (equal_nan)
    if np.isnan(special):  # fused, the NaN still reaches the output (and so the loss)
        assert np.isnan(fused[0]).any()


def test_unbatched_input_and_no_grad():
    phalanx.manual_seed(0)
    model = conv_relu_stack(phalanx, 3, 16, 3, {})
    x = randn((3, 9, 9), seed=6)
    y = model(phalanx.from_numpy(x))
    with phalanx.no_grad():
        y_eval = model(phalanx.from_numpy(x))
    unfused(model)
    expected = model(phalanx.from_numpy(x))
    assert list(y.shape) == [8, 5, 5]
    np.testing.assert_array_equal(y.detach().numpy(), expected.detach().numpy())
    np.testing.assert_array_equal(y_eval.numpy(), expected.detach().numpy())


def test_in_place_change_of_the_output_as_unfused():
    """The fused node saves its output as the ReLU mask: an in-place op on that output
    afterwards behaves as with the unfused ReLU (which saves it too). On a plain output (aarch64)
    both refuse the backward, as PyTorch does; on a blocked one (x86-64) the in-place op writes a
    plain copy, the saved blocked output is untouched, and both give the same gradients."""
    outcomes = []
    for fuse in (True, False):
        model = conv_then_relu()
        if not fuse:
            unfused(model)
        x = phalanx.from_numpy(randn((2, 3, 6, 6), seed=7))
        x.requires_grad_(True)
        y = model(x)
        blocked = y._is_blocked
        y.mul_(2.0)
        try:
            y.sum().backward()
        except RuntimeError as e:
            assert not blocked and "modified by an inplace operation" in str(e)
            outcomes.append(None)
            continue
        assert blocked, "an in-place change of the saved plain output went unnoticed"
        outcomes.append([np.array(x.grad.numpy()), np.array(model[0].weight.grad.numpy())])
    assert (outcomes[0] is None) == (outcomes[1] is None)
    for a, b in zip(*(o or [] for o in outcomes), strict=True):
        np.testing.assert_array_equal(a, b)
