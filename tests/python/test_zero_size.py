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
    "conv_batch0": (
        lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b),
        [(0, 3, 5, 5), (4, 3, 3, 3), (4,)],
    ),
    "conv_batch0_no_bias_16c": (
        lambda lib, x, w: lib.nn.functional.conv2d(x, w),
        [(0, 16, 6, 6), (16, 16, 3, 3)],
    ),
    "conv_batch0_stride_padding": (
        lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, stride=2, padding=1),
        [(0, 4, 5, 5), (6, 4, 3, 3), (6,)],
    ),
    "conv_batch0_groups": (
        lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, groups=2),
        [(0, 4, 5, 5), (6, 2, 3, 3), (6,)],
    ),
    "conv_batch0_depthwise": (
        lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, padding=1, groups=4),
        [(0, 4, 5, 5), (4, 1, 3, 3), (4,)],
    ),
    "bn_train_batch0_2d": (lambda lib, x, w, b: _bn(lib, x, w, b, True), [(0, 3), (3,), (3,)]),
    "bn_train_batch0_4d": (
        lambda lib, x, w, b: _bn(lib, x, w, b, True),
        [(0, 3, 2, 2), (3,), (3,)],
    ),
    "bn_train_spatial0": (lambda lib, x, w, b: _bn(lib, x, w, b, True), [(2, 3, 0, 2), (3,), (3,)]),
}

for _act in ("relu6", "leaky_relu", "gelu", "sigmoid", "tanh"):
    for _shape in ((0, 3), (2, 0), (0, 3, 2, 2)):
        CASES[f"{_act}_{'x'.join(map(str, _shape))}"] = (
            lambda lib, x, act=_act: getattr(lib.nn.functional, act)(x),
            [_shape],
        )

# Reduction "mean" over no samples is 0/0: NaN in PyTorch, and so here.
for _red in ("mean", "sum", "none"):
    CASES[f"nll_loss_{_red}"] = (
        lambda lib, x, red=_red: lib.nn.functional.nll_loss(
            x, lib.zeros(0, dtype=lib.int64), reduction=red
        ),
        [(0, 3)],
    )
    CASES[f"cross_entropy_{_red}"] = (
        lambda lib, x, red=_red: lib.nn.functional.cross_entropy(
            x, lib.zeros(0, dtype=lib.int64), reduction=red
        ),
        [(0, 3)],
    )
    CASES[f"mse_loss_{_red}"] = (
        lambda lib, x, red=_red: lib.nn.functional.mse_loss(x, lib.zeros(0, 3), reduction=red),
        [(0, 3)],
    )

CASES.update(
    {
        "flatten": (lambda lib, x: x.flatten(1), [(0, 3, 2)]),
        "flatten_module": (lambda lib, x: lib.nn.Flatten()(x), [(0, 3, 2)]),
        "adaptive_avg_pool_batch0_2x2": (
            lambda lib, x: lib.nn.functional.adaptive_avg_pool2d(x, (2, 2)),
            [(0, 3, 4, 4)],
        ),
        "dropout_training": (
            lambda lib, x: lib.nn.functional.dropout(x, 0.5, training=True),
            [(0, 3)],
        ),
        "max_over_nonempty_dim": (lambda lib, x: x.max(1)[0], [(0, 3)]),
        "mean_all": (lambda lib, x: x.mean(), [(0, 3)]),
    }
)


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


@pytest.mark.parametrize("groups", [1, 4])
def test_conv2d_module_on_an_empty_batch_matches_torch(groups):
    ours = phalanx.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=groups)
    theirs = torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=groups)
    for lib, m in ((phalanx, ours), (torch, theirs)):
        x = lib.zeros(0, 4, 7, 7, requires_grad=True)
        y = m(x)
        y.sum().backward()
        assert tuple(y.shape) == (0, 8, 4, 4) and tuple(x.grad.shape) == (0, 4, 7, 7)
        assert not m.weight.grad.numpy().any() and not m.bias.grad.numpy().any()


def test_conv2d_with_no_output_channels_is_refused_like_torch():
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv2d(torch.zeros(2, 4, 5, 5), torch.zeros(0, 4, 3, 3))
    with pytest.raises(ValueError, match=r"out_channels.*\[0, 4, 3, 3\]"):
        phalanx.nn.functional.conv2d(phalanx.zeros(2, 4, 5, 5), phalanx.zeros(0, 4, 3, 3))


def test_conv2d_with_no_input_channels_is_refused():
    # PyTorch returns a (2, 0, 3, 3) output here, ignoring the weight's 3 output channels;
    # phalanx refuses it by name rather than copy that.
    with pytest.raises(ValueError, match=r"in_channels.*\[2, 0, 5, 5\]"):
        phalanx.nn.functional.conv2d(phalanx.zeros(2, 0, 5, 5), phalanx.zeros(3, 0, 3, 3))


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2), (2, 3, 0, 2)])
def test_batch_norm_module_training_on_no_values_matches_torch(shape):
    results = []
    for lib in (phalanx, torch):
        m = lib.nn.BatchNorm1d(3) if len(shape) == 2 else lib.nn.BatchNorm2d(3)
        x = lib.full(shape, 0.5, requires_grad=True)
        y = m(x)
        y.sum().backward()
        results.append(
            [y.detach().numpy(), x.grad.numpy(), m.weight.grad.numpy(), m.bias.grad.numpy()]
            + [m.running_mean.numpy(), m.running_var.numpy(), m.num_batches_tracked.numpy()]
        )
    for a, b in zip(*results):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_batch_norm_training_with_one_value_per_channel_is_refused_like_torch():
    with pytest.raises(ValueError):
        torch.nn.functional.batch_norm(torch.zeros(1, 3, 1, 1), None, None, training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        phalanx.nn.functional.batch_norm(phalanx.zeros(1, 3, 1, 1), None, None, training=True)


def test_batch_norm_training_counts_values_over_every_spatial_axis():
    # (1, 3, 1, 4) holds 4 values per channel: PyTorch trains on it; phalanx used to refuse
    # it, counting only N * H.
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 1, 4)
    ref = torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True)
    y = phalanx.nn.functional.batch_norm(phalanx.tensor(x), None, None, training=True)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
@pytest.mark.parametrize("dim", [None, 0])
def test_extremes_over_no_elements_are_refused_like_torch(op, dim):
    args = () if dim is None else (dim,)
    with pytest.raises((RuntimeError, IndexError)):
        getattr(torch.zeros(0, 3), op)(*args)
    error = ValueError if dim is None else IndexError
    what = "non-empty tensor" if dim is None else "zero-size dimension 0"
    with pytest.raises(error, match=rf"^{op}\(\): .*{what}.*\[0, 3\]"):
        getattr(phalanx.zeros(0, 3), op)(*args)


OPTIMIZERS = {
    "sgd_momentum_decay": lambda lib, ps: lib.optim.SGD(
        ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True
    ),
    "adam": lambda lib, ps: lib.optim.Adam(ps, lr=0.1, weight_decay=0.1),
    "adamw": lambda lib, ps: lib.optim.AdamW(ps, lr=0.1),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_step_a_zero_size_parameter_like_torch(name):
    results = []
    for lib in (phalanx, torch):
        empty = lib.nn.Parameter(lib.zeros(0, 3))
        full = lib.nn.Parameter(lib.full((2, 3), 0.5))
        opt = OPTIMIZERS[name](lib, [empty, full])
        for _ in range(2):
            opt.zero_grad()
            (empty.sum() + (full * full).sum()).backward()
            opt.step()
        results.append((empty.detach().numpy(), full.detach().numpy()))
    for a, b in zip(*results):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lars_steps_a_zero_size_parameter():
    # No PyTorch reference: the trust ratio of a parameter with no elements (norm 0) must not
    # turn the step into NaN for it or for the others.
    empty = phalanx.nn.Parameter(phalanx.zeros(0, 3))
    full = phalanx.nn.Parameter(phalanx.full((2, 3), 0.5))
    opt = phalanx.optim.LARS([empty, full], lr=0.1, weight_decay=0.1)
    for _ in range(2):
        opt.zero_grad()
        (empty.sum() + (full * full).sum()).backward()
        opt.step()
    assert empty.shape == (0, 3)
    assert np.isfinite(full.detach().numpy()).all() and (full.detach().numpy() < 0.5).all()


def test_conv2d_with_samples_but_no_rows_is_refused_like_torch():
    # Padding would otherwise make a (1, 2, 2, 7) output out of nothing (it came back as
    # uninitialised memory).
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv2d(torch.zeros(1, 3, 0, 5), torch.ones(2, 3, 1, 1), padding=1)
    with pytest.raises(ValueError, match=r"height and width.*\[1, 3, 0, 5\]"):
        phalanx.nn.functional.conv2d(phalanx.zeros(1, 3, 0, 5), phalanx.ones(2, 3, 1, 1), padding=1)
