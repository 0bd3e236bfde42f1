"""Ops on tensors with zero-size dimensions (batch, channels, spatial): forward and backward
match PyTorch's result, or raise a clear error. Before, batch_norm in eval mode on 0 samples
ran forward and segfaulted in backward."""

import numpy as np
import pytest

import phalanx

torch = pytest.importorskip("torch")


def _run(lib, build, shapes):
    """Builds leaf inputs of `shapes` (zeros + 0.5), runs `build`, backprops a sum; returns
    the output and the inputs' gradients as numpy arrays."""
    leaves = [lib.full(s, 0.5, requires_grad=True) for s in shapes]
    y = build(lib, *leaves)
    y.sum().backward()
    grads = [x.grad for x in leaves]
    out = [y.detach().numpy()]
    out += [
        np.zeros(s, np.float32) if g is None else g.detach().numpy() for s, g in zip(shapes, grads)
    ]
    return out


def _bn(lib, x, w, b, training):
    mean, var = lib.zeros(w.shape[0]), lib.ones(w.shape[0])
    return lib.nn.functional.batch_norm(x, mean, var, w, b, training=training)


CASES = {
    "bn_eval_batch0_2d": (lambda lib, x, w, b: _bn(lib, x, w, b, False), [(0, 3), (3,), (3,)]),
    "bn_eval_batch0_4d": (
        lambda lib, x, w, b: _bn(lib, x, w, b, False),
        [(0, 3, 2, 2), (3,), (3,)],
    ),
    "bn_eval_spatial0": (lambda lib, x, w, b: _bn(lib, x, w, b, False), [(2, 3, 0, 2), (3,), (3,)]),
    "linear_batch0": (lambda lib, x, w: lib.nn.functional.linear(x, w), [(0, 3), (4, 3)]),
    "linear_in0": (lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), [(2, 0), (4, 0), (4,)]),
    "linear_out0": (lambda lib, x, w: lib.nn.functional.linear(x, w), [(2, 3), (0, 3)]),
    "relu": (lambda lib, x: lib.nn.functional.relu(x), [(0, 3)]),
    "softmax_batch0": (lambda lib, x: lib.nn.functional.softmax(x, dim=1), [(0, 3)]),
    "softmax_dim0": (lambda lib, x: lib.nn.functional.softmax(x, dim=1), [(2, 0)]),
    "log_softmax": (lambda lib, x: lib.nn.functional.log_softmax(x, dim=1), [(0, 3)]),
    "mse_loss": (lambda lib, x: lib.nn.functional.mse_loss(x, lib.zeros(0, 3)), [(0, 3)]),
    "sum": (lambda lib, x: x.sum(), [(0, 3)]),
    "mean_dim": (lambda lib, x: x.mean(0), [(0, 3)]),
    "add_broadcast": (lambda lib, x, y: x + y, [(0, 3), (3,)]),
    "mul": (lambda lib, x, y: x * y, [(2, 0), (2, 0)]),
    "cat": (lambda lib, x, y: lib.cat([x, y]), [(0, 3), (2, 3)]),
    "stack": (lambda lib, x, y: lib.stack([x, y]), [(0, 3), (0, 3)]),
    "views": (lambda lib, x: x.view(3, 0).t().reshape(0, 3), [(0, 3)]),
    "avg_pool_batch0": (lambda lib, x: lib.nn.functional.avg_pool2d(x, 2), [(0, 2, 4, 4)]),
    "max_pool_batch0": (lambda lib, x: lib.nn.functional.max_pool2d(x, 2), [(0, 2, 4, 4)]),
    "max_pool_batch0_16c": (
        lambda lib, x: lib.nn.functional.max_pool2d(x, 3, 2, 1),
        [(0, 16, 5, 5)],
    ),
    "adaptive_avg_pool_batch0": (
        lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, 1),
        [(0, 2, 4, 4)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_zero_size_forward_and_backward_match_torch(name):
    build, shapes = CASES[name]
    ours = _run(phalanx, build, shapes)
    theirs = _run(torch, build, shapes)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape, (name, a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_max_of_empty_tensor_is_refused_like_torch():
    with pytest.raises(ValueError, match="non-empty"):
        phalanx.zeros(0, 3).max()


def test_batch_norm_eval_with_no_channels_gives_empty_results():
    # PyTorch fails here with an IndexError from inside its kernel; an empty result is the
    # consistent answer (nothing to normalise), so phalanx gives it.
    x = phalanx.full((2, 0, 2, 2), 0.5, requires_grad=True)
    w, b = phalanx.ones(0, requires_grad=True), phalanx.zeros(0, requires_grad=True)
    y = phalanx.nn.functional.batch_norm(x, phalanx.zeros(0), phalanx.ones(0), w, b, training=False)
    y.sum().backward()
    assert y.shape == (2, 0, 2, 2) and x.grad.shape == (2, 0, 2, 2) and w.grad.shape == (0,)


@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_pooling_with_no_channels_is_refused_like_torch(pool):
    x = torch.zeros(2, 0, 4, 4)
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, pool)(x, 2)
    with pytest.raises(ValueError, match=r"channel dimension.*\[2, 0, 4, 4\]"):
        getattr(phalanx.nn.functional, pool)(phalanx.zeros(2, 0, 4, 4), 2)


def test_adaptive_pooling_with_no_channels_works_forward_like_torch():
    # PyTorch pools it forward (and refuses only its backward); phalanx does both.
    ref = torch.nn.functional.adaptive_avg_pool2d(torch.zeros(2, 0, 4, 4), 2)
    x = phalanx.zeros(2, 0, 4, 4, requires_grad=True)
    y = phalanx.nn.functional.adaptive_avg_pool2d(x, 2)
    assert tuple(y.shape) == tuple(ref.shape)
    y.sum().backward()
    assert x.grad.shape == (2, 0, 4, 4)
