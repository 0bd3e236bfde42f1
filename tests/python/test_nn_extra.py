"""1-D pooling, padding modules, Unflatten, ELU, Softplus, Hardswish, Hardsigmoid, Mish,
PReLU and cosine_similarity against torch: forward and gradients."""

import numpy as np
import pytest
from conftest import assert_close, check_op, randn

import phalanx
import phalanx.nn.functional as F

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

POOL1D = [
    ("max_pool1d", (2, 3, 9), dict(kernel_size=3)),
    ("max_pool1d", (2, 3, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool1d", (3, 10), dict(kernel_size=2, dilation=2)),
    ("avg_pool1d", (2, 3, 9), dict(kernel_size=4, stride=2, padding=2)),
    ("avg_pool1d", (2, 3, 9), dict(kernel_size=3, padding=1, count_include_pad=False)),
    ("adaptive_avg_pool1d", (2, 3, 10), dict(output_size=4)),
    ("adaptive_avg_pool1d", (3, 7), dict(output_size=1)),
]


@pytest.mark.parametrize("name,shape,kw", POOL1D)
def test_pool1d(name, shape, kw):
    check_op(
        lambda x: getattr(F, name)(x, **kw),
        lambda x: getattr(TF, name)(x, **kw),
        [randn(shape, seed=1)],
    )


ACTIVATIONS = [
    ("elu", {}),
    ("elu", dict(alpha=0.5)),
    ("softplus", {}),
    ("softplus", dict(beta=2.0, threshold=5.0)),
    ("hardswish", {}),
    ("hardsigmoid", {}),
    ("mish", {}),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS)
def test_activations(name, kw):
    x = randn((4, 25), seed=1, scale=5.0)
    x[0, :4] = [100.0, -100.0, 30.0, -30.0]  # no overflow in either branch
    check_op(lambda a: getattr(F, name)(a, **kw), lambda a: getattr(TF, name)(a, **kw), [x])


@pytest.mark.parametrize("channels", [1, 3])
def test_prelu(channels):
    check_op(
        F.prelu,
        TF.prelu,
        [randn((2, 3, 4), seed=1), np.linspace(0.1, 0.3, channels).astype(np.float32)],
    )


@pytest.mark.parametrize("dim", [1, -1])
def test_cosine_similarity(dim):
    a, b = randn((4, 5), seed=1), randn((4, 5), seed=2)
    a[1] = 0.0  # a zero vector: divided by eps
    check_op(
        lambda x, y: F.cosine_similarity(x, y, dim=dim),
        lambda x, y: TF.cosine_similarity(x, y, dim=dim),
        [a, b],
    )


MODULES = [
    ("MaxPool1d", (3,), dict(stride=2), (2, 3, 11)),
    ("AvgPool1d", (2,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 10)),
    ("ZeroPad2d", ((1, 2, 0, 1),), {}, (1, 2, 3, 3)),
    ("ConstantPad1d", (2, 3.5), {}, (1, 2, 4)),
    ("ConstantPad2d", (1, -1.0), {}, (1, 2, 3, 3)),
    ("ReflectionPad1d", (2,), {}, (1, 2, 5)),
    ("ReflectionPad2d", ((1, 1, 2, 0),), {}, (1, 2, 4, 4)),
    ("ReplicationPad1d", ((3, 1),), {}, (1, 2, 4)),
    ("ReplicationPad2d", (2,), {}, (1, 2, 3, 3)),
    ("Unflatten", (1, (2, 6)), {}, (3, 12)),
    ("ELU", (), dict(alpha=0.3), (4, 6)),
    ("Softplus", (), dict(beta=3.0), (4, 6)),
    ("Hardswish", (), {}, (4, 6)),
    ("Hardsigmoid", (), {}, (4, 6)),
    ("Mish", (), {}, (4, 6)),
    ("PReLU", (3,), {}, (2, 3, 4)),
]


@pytest.mark.parametrize("name,args,kw,shape", MODULES)
def test_modules_match_torch(name, args, kw, shape):
    px_m, th_m = getattr(phalanx.nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    x = randn(shape, seed=3, scale=3.0)
    px_x, th_x = phalanx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    px_y, th_y = px_m(px_x), th_m(th_x)
    assert_close(px_y, th_y)
    g = randn(tuple(th_y.shape), seed=4)
    px_y.backward(phalanx.tensor(g))
    th_y.backward(torch.tensor(g))
    assert_close(px_x.grad, th_x.grad)
    for (n, p), (_, t) in zip(px_m.named_parameters(), th_m.named_parameters()):
        assert_close(p.grad, t.grad, msg=n)


def test_cosine_similarity_module_and_errors():
    a, b = randn((3, 4), seed=1), randn((3, 4), seed=2)
    assert_close(
        phalanx.nn.CosineSimilarity(dim=0)(phalanx.tensor(a), phalanx.tensor(b)),
        torch.nn.CosineSimilarity(dim=0)(torch.tensor(a), torch.tensor(b)),
    )
    with pytest.raises(ValueError, match="weight has 2 entries"):
        F.prelu(phalanx.ones(2, 3, 4), phalanx.ones(2))
    with pytest.raises(ValueError, match="2-D or 3-D input"):
        F.max_pool1d(phalanx.ones(2, 3, 4, 5), 2)
    with pytest.raises(ValueError, match="4 ints"):
        phalanx.nn.ZeroPad2d((1, 2))
