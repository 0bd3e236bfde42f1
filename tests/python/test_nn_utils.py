"""phalanx.nn.utils against torch.nn.utils: gradient clipping and flat parameter vectors."""

import math

import numpy as np
import pytest
from conftest import assert_close, randn

import phalanx

torch = pytest.importorskip("torch")

SHAPES = [(4, 3), (3,), (2, 2, 2)]


def params_with_grads(lib, scale=1.0, skip=()):
    """Parameters whose gradients are seeded arrays; indices in `skip` get no gradient."""
    params = []
    for i, s in enumerate(SHAPES):
        p = lib.tensor(randn(s, seed=i), requires_grad=True)
        if i not in skip:
            p.grad = lib.tensor(randn(s, seed=10 + i, scale=scale))
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf"), "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    px, th = params_with_grads(phalanx, skip=(1,)), params_with_grads(torch, skip=(1,))
    px_total = phalanx.nn.utils.clip_grad_norm_(px, max_norm, norm_type=norm_type)
    th_total = torch.nn.utils.clip_grad_norm_(th, max_norm, norm_type=norm_type)
    assert px_total.dim() == 0
    assert_close(px_total, th_total, rtol=1e-5)
    for i, (p, t) in enumerate(zip(px, th)):
        if t.grad is None:
            assert p.grad is None
        else:
            assert_close(p.grad, t.grad, rtol=1e-5, atol=1e-7, msg=f"grad {i}")


def test_clip_grad_norm_single_tensor_and_generator():
    px, th = params_with_grads(phalanx), params_with_grads(torch)
    assert_close(
        phalanx.nn.utils.clip_grad_norm_(px[0], 0.1), torch.nn.utils.clip_grad_norm_(th[0], 0.1)
    )
    assert_close(px[0].grad, th[0].grad, rtol=1e-5)
    model = phalanx.nn.Linear(3, 2)
    model(phalanx.ones(4, 3)).sum().backward()
    total = phalanx.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    assert float(total) > 1.0  # clipped: the generator was consumed once, correctly
    norm = math.sqrt(sum(float((p.grad * p.grad).sum()) for p in model.parameters()))
    assert abs(norm - 1.0) < 1e-4


def test_clip_grad_norm_without_grads_is_zero():
    px = params_with_grads(phalanx, skip=(0, 1, 2))
    assert float(phalanx.nn.utils.clip_grad_norm_(px, 1.0)) == 0.0


def test_clip_grad_norm_nonfinite():
    px, th = params_with_grads(phalanx), params_with_grads(torch)
    for params, lib in ((px, phalanx), (th, torch)):
        g = params[1].grad.numpy().copy()
        g[0] = np.nan
        params[1].grad = lib.tensor(g)
    px_total = phalanx.nn.utils.clip_grad_norm_(px, 1.0)
    th_total = torch.nn.utils.clip_grad_norm_(th, 1.0)
    assert math.isnan(float(px_total)) and math.isnan(float(th_total))
    for p, t in zip(px, th):  # NaN spreads to every gradient, as in torch
        assert np.array_equal(np.isnan(p.grad.numpy()), np.isnan(t.grad.numpy()))
    with pytest.raises(RuntimeError, match="non-finite"):
        phalanx.nn.utils.clip_grad_norm_(px, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("norm_type", [0, -1.0, "two", None])
def test_clip_grad_norm_bad_norm_type(norm_type):
    px = params_with_grads(phalanx)
    with pytest.raises((ValueError, TypeError), match="norm_type"):
        phalanx.nn.utils.clip_grad_norm_(px, 1.0, norm_type=norm_type)


@pytest.mark.parametrize("clip_value", [0.3, 5.0])
def test_clip_grad_value_matches_torch(clip_value):
    px, th = params_with_grads(phalanx, skip=(2,)), params_with_grads(torch, skip=(2,))
    assert phalanx.nn.utils.clip_grad_value_(px, clip_value) is None
    torch.nn.utils.clip_grad_value_(th, clip_value)
    for p, t in zip(px[:2], th[:2]):
        assert_close(p.grad, t.grad, rtol=0, atol=0)
    assert px[2].grad is None


def test_parameters_to_vector_and_back():
    px, th = params_with_grads(phalanx), params_with_grads(torch)
    pv = phalanx.nn.utils.parameters_to_vector(px)
    tv = torch.nn.utils.parameters_to_vector(th)
    assert_close(pv, tv, rtol=0, atol=0)
    (pv * pv).sum().backward()  # differentiable, as in torch
    (tv * tv).sum().backward()
    for p, t in zip(px, th):
        assert_close(p.grad, t.grad)
    new = randn(tuple(tv.shape), seed=99)
    phalanx.nn.utils.vector_to_parameters(phalanx.tensor(new), px)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), th)
    for p, t in zip(px, th):
        assert_close(p, t, rtol=0, atol=0)
        assert p.requires_grad and p.is_leaf


def test_vector_to_parameters_bad_arguments():
    px = params_with_grads(phalanx)
    with pytest.raises(TypeError, match="Tensor"):
        phalanx.nn.utils.vector_to_parameters([1.0, 2.0], px)
    with pytest.raises(ValueError, match="1-D"):
        phalanx.nn.utils.vector_to_parameters(phalanx.zeros(4, 5), px)
    with pytest.raises(ValueError, match="22 elements"):
        phalanx.nn.utils.vector_to_parameters(phalanx.zeros(22), px)
