"""Convolution weights kept in their oneDNN layout between training steps (ops/conv.h): no
weight reorder in the forward or the optimizer step (at most one per convolution in the
backward, where oneDNN's backward kernel wants another blocking; none where that blocking is
the forward's with its blocks transposed, which the optimizers write alongside), the
optimizers updating blocked parameters, gradients and state, and every reader (numpy,
detach, state_dict) seeing the plain values. That the backward keeps oneDNN's fast kernels
is tests/python/test_dispatch_no_ref.py."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import CONV_IS_BLOCKED

import phalanx
import phalanx.models
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx import _C

torch = pytest.importorskip("torch")

OPTIMIZERS = {
    "sgd": (
        lambda ps: phalanx.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    ),
    "adam": (
        lambda ps: phalanx.optim.Adam(ps, lr=1e-2),
        lambda ps: torch.optim.Adam(ps, lr=1e-2),
    ),
    "rmsprop": (
        lambda ps: phalanx.optim.RMSprop(ps, lr=1e-3, momentum=0.5),
        lambda ps: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.5),
    ),
    "adagrad": (
        lambda ps: phalanx.optim.Adagrad(ps, lr=1e-2),
        lambda ps: torch.optim.Adagrad(ps, lr=1e-2),
    ),
    "adamw": (
        lambda ps: phalanx.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    ),
    "adadelta": (
        lambda ps: phalanx.optim.Adadelta(ps, lr=0.5),
        lambda ps: torch.optim.Adadelta(ps, lr=0.5),
    ),
}


def nets():
    """The same small CNN in both frameworks: 6 channels (a padded blocked layout on x86),
    a depthwise and a grouped convolution, a stride-2 one, a linear head."""

    def layers(m):
        return [
            m.Conv2d(3, 6, 3, padding=1),
            m.ReLU(),
            m.Conv2d(6, 16, 3, padding=1, stride=2),
            m.ReLU(),
            m.Conv2d(16, 16, 3, padding=1, groups=16),
            m.Conv2d(16, 32, 1, groups=4, bias=False),
            m.ReLU(),
            m.AdaptiveAvgPool2d(1),
            m.Flatten(),
            m.Linear(32, 5),
        ]

    p, t = nn.Sequential(*layers(nn)), torch.nn.Sequential(*layers(torch.nn))
    for a, b in zip(p.parameters(), t.parameters()):
        with torch.no_grad():
            b.copy_(torch.from_numpy(a.detach().numpy().copy()))
    return p, t


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_steps_match_pytorch_and_weights_stay_in_their_layout(name):
    phalanx.manual_seed(3)
    p, t = nets()
    convs = sum(isinstance(m, nn.Conv2d) for m in p.modules())
    make_p, make_t = OPTIMIZERS[name]
    op, ot = make_p(list(p.parameters())), make_t(list(t.parameters()))
    rng = np.random.default_rng(0)
    backward_reorders = []
    for step in range(4):
        x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
        y = rng.integers(0, 5, 4)
        c0 = _C._reorder_counts()
        loss = F.cross_entropy(p(phalanx.tensor(x)), phalanx.tensor(y))
        op.zero_grad()
        c1 = _C._reorder_counts()
        loss.backward()
        c2 = _C._reorder_counts()
        op.step()
        c3 = _C._reorder_counts()
        if step:  # the first forward adopts the layouts
            assert c1["weights"] == c0["weights"], "a weight was reordered in the forward"
            assert c3["weights"] == c2["weights"], "a weight was reordered by the optimizer"
            assert c3["to_blocked"] == c0["to_blocked"], "a weight went plain and back"
            backward_reorders.append(c2["weights"] - c1["weights"])
        lt = torch.nn.functional.cross_entropy(t(torch.from_numpy(x)), torch.from_numpy(y))
        ot.zero_grad()
        lt.backward()
        ot.step()
        np.testing.assert_allclose(loss.item(), lt.item(), rtol=1e-4, atol=1e-5)
    # backward: the same every step, at most one per convolution (its weight for
    # backward-data, or its gradient where the kernel wrote another layout)
    assert len(set(backward_reorders)) == 1 and backward_reorders[0] <= convs, backward_reorders
    for a, b in zip(p.parameters(), t.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=2e-4, atol=2e-5)
    # the optimizer's state reads plain, equal to PyTorch's
    state = op.state_dict()["state"]
    tstate = ot.state_dict()["state"]
    for i in state:
        for k, v in state[i].items():
            if k == "step":
                continue
            np.testing.assert_allclose(
                np.asarray(v.detach().numpy()), tstate[i][k].numpy(), rtol=2e-4, atol=2e-5
            )


def test_readers_see_plain_values_and_writes_through_them_count():
    phalanx.manual_seed(0)
    conv = nn.Conv2d(3, 16, 3, padding=1)
    opt = phalanx.optim.SGD(conv.parameters(), lr=0.1, momentum=0.9)
    x = phalanx.randn(2, 3, 8, 8)
    conv(x).sum().backward()
    opt.step()
    kept = conv.weight.detach().numpy().copy()  # detach converts the weight to plain first
    conv.weight.detach().mul_(0.5)  # a write through an alias reaches the parameter
    np.testing.assert_allclose(conv.weight.detach().numpy(), kept * 0.5, rtol=1e-6)
    sd = conv.state_dict()["weight"].numpy()
    np.testing.assert_allclose(sd, kept * 0.5, rtol=1e-6)
    # a live numpy view keeps the parameter plain: a later write through it is seen
    view = conv.weight.detach().numpy()
    opt.zero_grad()
    conv(x).sum().backward()
    view[:] = 0.0
    with phalanx.no_grad():
        out = conv(x)
    np.testing.assert_allclose(
        out.numpy(), np.broadcast_to(conv.bias.detach().numpy()[None, :, None, None], out.shape)
    )
    del view
    opt.step()  # the gradient of the plain weight updates it as usual
    assert np.isfinite(conv.weight.detach().numpy()).all()


FUSED = {
    "sgd": lambda ps: phalanx.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: phalanx.optim.Adam(ps, lr=1e-2, amsgrad=True),
    "adamw": lambda ps: phalanx.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda ps: phalanx.optim.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True),
    "adagrad": lambda ps: phalanx.optim.Adagrad(ps, lr=1e-2),
    "adadelta": lambda ps: phalanx.optim.Adadelta(ps, lr=0.5),
    "lars": lambda ps: phalanx.optim.LARS(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
}


def resnet_like():
    """Channels in whole blocks of 16: on x86-64 backward-data reads the 3x3 weights as
    OIhw16o16i and the 1x1 ones as BAcd16a16b, the forward's blocking transposed. Stride 1
    only: oneDNN 3.x runs a stride-2 backward-data (brgconv_strided) on another blocking,
    reordered every step (oneDNN 2.6 reads the transposed blocking there too)."""
    return nn.Sequential(
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 1),
        nn.ReLU(),
        nn.Conv2d(64, 32, 1, bias=False),
        nn.Conv2d(32, 32, 3, padding=1),
    )


def lenet_like():
    """LeNet-5's features: the second convolution takes 6 channels, not a whole block, from
    inside the network. It runs channels-last, and backward-data reads its weight padded to
    16 input channels (ABcd16a16b where the forward keeps Acdb16a): a copy the optimizers
    write element by element rather than block by block."""
    return phalanx.models.LeNet5().features


NETS = {"resnet_like": (resnet_like, (2, 16, 8, 8)), "lenet_like": (lenet_like, (2, 1, 28, 28))}


def train(name, steps, keep_plain, net_name="resnet_like"):
    """`steps` steps of `name` on NETS[net_name]; keep_plain: a numpy view of every parameter
    stays alive, so none is kept blocked (the plain path, the reference). Returns the
    parameters, the last step's input gradient and the weight reorders of each step."""
    phalanx.manual_seed(5)
    make_net, shape = NETS[net_name]
    net = make_net()
    # direct kernels: Winograd's backward-data reads the forward's own blocking, so the 3x3
    # copies would not be exercised (Winograd with kept weights: tests/python/test_winograd.py)
    winograd = phalanx.backends.onednn.allow_winograd
    phalanx.backends.onednn.allow_winograd = False
    try:
        views = [p.detach().numpy() for p in net.parameters()] if keep_plain else []
        opt = FUSED[name](list(net.parameters()))
        rng = np.random.default_rng(1)
        reorders = []
        for _ in range(steps):
            x = phalanx.tensor(rng.standard_normal(shape).astype(np.float32))
            x.requires_grad_(True)
            before = _C._reorder_counts()["weights"]
            opt.zero_grad()
            (net(x) ** 2).mean().backward()
            opt.step()
            reorders.append(_C._reorder_counts()["weights"] - before)
        del views
    finally:
        phalanx.backends.onednn.allow_winograd = winograd
    return [p.detach().numpy().copy() for p in net.parameters()], x.grad.numpy().copy(), reorders


@pytest.mark.parametrize("net_name", sorted(NETS))
@pytest.mark.parametrize("name", sorted(FUSED))
def test_the_optimizer_keeps_the_backwards_copy_current_no_weight_reorder_in_a_step(name, net_name):
    """Every fused optimizer writes backward-data's copy of each kept weight alongside it
    (dnnl_util::WeightTwins): after the first step no weight is reordered at all, and the
    input gradients (read through those copies) and the parameters equal the plain path's."""
    before = phalanx.backends.onednn.twin_weights
    phalanx.backends.onednn.twin_weights = True
    try:
        params, dx, reorders = train(name, 5, keep_plain=False, net_name=net_name)
        ref_params, ref_dx, _ = train(name, 5, keep_plain=True, net_name=net_name)
    finally:
        phalanx.backends.onednn.twin_weights = before
    assert reorders[1:] == [0] * 4, reorders
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-6)
    for a, b in zip(params, ref_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_twin_weights_off_reorders_in_the_backward_instead_with_equal_results():
    """phalanx.backends.onednn.twin_weights = False: no copy is kept between steps (one
    weight copy less in memory); each backward reorders the weights it reads in another
    blocking, and training gives the same numbers."""
    onednn = phalanx.backends.onednn
    # the default: on, unless PHALANX_TWIN_WEIGHTS=0 started this process with it off
    assert onednn.twin_weights is (os.environ.get("PHALANX_TWIN_WEIGHTS") != "0")
    before = onednn.twin_weights
    try:
        onednn.twin_weights = True
        params, dx, _ = train("sgd", 4, keep_plain=False)
        onednn.twin_weights = False
        off_params, off_dx, reorders = train("sgd", 4, keep_plain=False)
    finally:
        onednn.twin_weights = before
    expected = 4 if CONV_IS_BLOCKED else 0  # every convolution's weight, every step
    assert reorders[1:] == [expected] * 3, reorders
    np.testing.assert_allclose(off_dx, dx, rtol=1e-5, atol=1e-7)
    for a, b in zip(off_params, params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(TypeError, match="twin_weights must be True or False, got 1"):
        onednn.twin_weights = 1


def test_the_environment_starts_twin_weights_off():
    code = "import phalanx; print(phalanx.backends.onednn.twin_weights)"
    for value, expected in (("0", "False"), ("1", "True")):
        env = dict(os.environ, PHALANX_TWIN_WEIGHTS=value)
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert r.stdout.strip() == expected, r.stderr[-2000:]
