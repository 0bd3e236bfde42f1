"""In-place activations (inplace=True) and activations whose backward reads their output,
against PyTorch: values and gradients through blocked (conv -> batch norm) and plain inputs,
views, the exact bounds where the gradient switches, and the misuse PyTorch refuses too."""

import numpy as np
import pytest
from conftest import assert_close

import phalanx
import phalanx.nn.functional as F

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

ACTS = {
    "relu": (lambda m, h, ip: m.relu(h, inplace=ip)),
    "relu6": (lambda m, h, ip: m.relu6(h, inplace=ip)),
    "leaky_relu(0.1)": (lambda m, h, ip: m.leaky_relu(h, 0.1, inplace=ip)),
    "leaky_relu(-0.5)": (lambda m, h, ip: m.leaky_relu(h, -0.5, inplace=ip)),
}
# In place, differentiable only when the output tells the gradient: a negative slope maps
# negatives to positives (PyTorch refuses it at backward, phalanx at the call).
DIFFERENTIABLE_IN_PLACE = ["relu", "relu6", "leaky_relu(0.1)"]


def params(inplace_acts):
    return [(a, True) for a in inplace_acts] + [(a, False) for a in ACTS]


def both(*arrays):
    """The same float32 arrays as phalanx and torch leaves requiring grad."""
    p = [phalanx.from_numpy(a.copy()).requires_grad_() for a in arrays]
    t = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
    return p, t


@pytest.mark.parametrize("act, inplace", params(DIFFERENTIABLE_IN_PLACE))
def test_conv_bn_activation_chain_matches_torch(act, inplace):
    # conv -> batch norm gives a blocked tensor: the in-place kernel runs on oneDNN's layout
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 9, 7), dtype=np.float32)
    w = rng.standard_normal((16, 5, 3, 3), dtype=np.float32) * 0.3
    g = rng.standard_normal(16, dtype=np.float32)
    b = rng.standard_normal(16, dtype=np.float32)
    (px, pw, pg, pb), (tx, tw, tg, tb) = both(x, w, g, b)
    outs = []
    for m, (xx, ww, gg, bb) in ((F, (px, pw, pg, pb)), (TF, (tx, tw, tg, tb))):
        h = m.batch_norm(m.conv2d(xx, ww, padding=1), None, None, gg, bb, training=True)
        y = ACTS[act](m, h, inplace)
        assert (y is h) == inplace
        # a second use of the output after the activation, as the next layer would
        loss = (y * y).sum() + y.sum()
        loss.backward()
        outs.append((y, xx.grad, ww.grad, gg.grad, bb.grad))
    for p, t, what in zip(outs[0], outs[1], ["y", "dx", "dw", "dgamma", "dbeta"]):
        assert_close(p, t, rtol=1e-4, atol=1e-4, msg=f"{act} {what}")


@pytest.mark.parametrize("act, inplace", params(DIFFERENTIABLE_IN_PLACE))
def test_gradient_at_the_bounds_matches_torch(act, inplace):
    # exactly 0 and 6, where the derivative switches; plain (2-D) tensors
    vals = np.array([[-7, -6, -1e-3, 0, 1e-3, 3, 6, 6.001, 7, 0]], np.float32)
    (px,), (tx,) = both(vals)
    ph, th = px * 1.0, tx * 1.0  # non-leaves, so in-place is allowed
    py, ty = ACTS[act](F, ph, inplace), ACTS[act](TF, th, inplace)
    gy = np.arange(1, vals.size + 1, dtype=np.float32).reshape(vals.shape)
    py.backward(phalanx.from_numpy(gy))
    ty.backward(torch.from_numpy(gy))
    assert_close(py, ty, rtol=0, atol=0)
    assert_close(px.grad, tx.grad, rtol=0, atol=0, msg=act)


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_output_saving_activations_match_torch(act):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 33), dtype=np.float32) * 4
    (px,), (tx,) = both(x)
    py, ty = getattr(F, act)(px * 1.0), getattr(torch, act)(tx * 1.0)
    (py * py).sum().backward()
    (ty * ty).sum().backward()
    assert_close(py, ty)
    assert_close(px.grad, tx.grad)


@pytest.mark.parametrize("act", DIFFERENTIABLE_IN_PLACE)
def test_inplace_on_a_view_matches_torch(act):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 10), dtype=np.float32) * 8
    (px,), (tx,) = both(x)
    ph, th = px * 1.0, tx * 1.0
    ACTS[act](F, ph[1:4], True)
    ACTS[act](TF, th[1:4], True)
    (ph * ph).sum().backward()
    (th * th).sum().backward()
    assert_close(ph, th)
    assert_close(px.grad, tx.grad, msg=act)


def test_inplace_with_a_negative_slope_is_refused_when_differentiated():
    h = phalanx.randn(4, requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match="leaky_relu with a negative slope in place cannot be"):
        F.leaky_relu(h, -0.5, inplace=True)
    # without autograd it is fine, and a view of a plain tensor is written through
    base = phalanx.from_numpy(np.array([[-2.0, 4.0], [-1.0, 3.0]], np.float32))
    F.leaky_relu(base[1], -0.5, inplace=True)
    np.testing.assert_array_equal(base.numpy(), [[-2.0, 4.0], [0.5, 3.0]])


def test_inplace_on_a_leaf_requiring_grad_raises_like_torch():
    x = phalanx.randn(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.relu(x, inplace=True)
    with phalanx.no_grad():
        y = F.relu(x, inplace=True)
    assert y is x
    assert float(x.min()) >= 0


def test_writing_the_output_of_an_inplace_activation_again_is_caught():
    x = phalanx.randn(5, requires_grad=True)
    h = x * 1.0
    F.relu(h, inplace=True)
    h.mul_(2.0)  # overwrites what relu's backward reads
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        h.sum().backward()


def test_inplace_bumps_the_version():
    h = phalanx.randn(5) * 1.0
    v = h._version
    F.relu(h, inplace=True)
    assert h._version > v
