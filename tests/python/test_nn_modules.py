"""phalanx.nn modules: registration, state_dict, modes, hooks, repr, init; parity with torch.nn."""

import math
from collections import OrderedDict

import numpy as np
import pytest
from conftest import assert_close, randn

import phalanx
import phalanx.nn as nn
from phalanx.nn import init

torch = pytest.importorskip("torch")
tnn = torch.nn


def _numpy_state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _copy_torch_to_phalanx(tm, pm):
    pm.load_state_dict(_numpy_state(tm))


def _key_shapes(module):
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        self.scale = nn.Parameter(phalanx.ones([1]))
        self.register_buffer("step", phalanx.zeros([1]))
        self.register_buffer("scratch", phalanx.zeros([2]), persistent=False)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.bn(self.conv(x)), 1)
        return self.head(x) * self.scale


# ---- Parameter ---------------------------------------------------------------------------


def test_parameter_basics():
    t = phalanx.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, phalanx.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    with phalanx.no_grad():
        t.fill_(3.0)  # shares storage with the wrapped tensor
    assert p.tolist() == [3.0, 3.0]
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert tuple(nn.Parameter().shape) == (0,)
    with pytest.raises(TypeError):
        nn.Parameter(np.ones(2))


def test_parameter_from_non_leaf_is_a_leaf():
    x = phalanx.ones([2], requires_grad=True)
    p = nn.Parameter(x * 2)
    assert p.is_leaf and p.grad_fn is None
    (p * 3).sum().backward()
    assert p.grad.tolist() == [3.0, 3.0]
    assert x.grad is None


# ---- registration and traversal ------------------------------------------------------------


def test_registration_and_named_members():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "scale",
        "conv.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "head.1.weight",
        "head.1.bias",
    ]
    assert [n for n, _ in net.named_buffers()] == [
        "step",
        "scratch",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    assert list(net.state_dict()) == [
        "scale",
        "step",
        "conv.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
        "head.1.weight",
        "head.1.bias",
    ]
    assert [n for n, _ in net.named_children()] == ["conv", "bn", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "conv", "bn", "head", "head.0", "head.1"]
    assert len(list(net.modules())) == 6
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in net.named_parameters(prefix="m")][1] == "m.conv.weight"
    assert net.conv is net._modules["conv"] and net.step is net._buffers["step"]
    assert net.get_submodule("head.1") is net.head[1]
    assert net.get_submodule("") is net
    with pytest.raises(AttributeError):
        net.get_submodule("head.7")
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = net.nothing
    assert "conv" in dir(net) and "scale" in dir(net)


def test_shared_parameters_and_modules_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(seq.modules())) == 3
    tied = nn.Module()
    tied.a = nn.Linear(2, 2)
    tied.b = nn.Linear(2, 2)
    tied.b.weight = tied.a.weight
    assert [n for n, _ in tied.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    # state_dict keeps both names, as PyTorch does
    assert list(tied.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_setattr_getattr_delattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(phalanx.ones([2]))
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = phalanx.ones([2])  # a plain tensor cannot replace a parameter
    m.w = None
    assert "w" in m._parameters and m.w is None
    assert list(m.parameters()) == []
    m.child = nn.ReLU()
    with pytest.raises(TypeError, match="child module 'child'"):
        m.child = 3
    m.register_buffer("buf", phalanx.zeros([1]))
    m.buf = phalanx.ones([1])
    assert m._buffers["buf"].tolist() == [1.0]
    with pytest.raises(TypeError, match="buffer 'buf'"):
        m.buf = 1.0
    # re-assigning a name as a different kind moves it between registries
    m.child = nn.Parameter(phalanx.ones([1]))
    assert "child" not in m._modules and "child" in m._parameters
    m.plain = 5
    assert m.plain == 5 and "plain" in m.__dict__
    del m.child, m.buf, m.plain
    assert "child" not in m._parameters and "buf" not in m._buffers and not hasattr(m, "plain")


def test_register_errors():
    m = nn.Module()
    m.x = 1
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("x", phalanx.zeros([1]))
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.register_parameter("a.b", None)
    with pytest.raises(KeyError, match="empty"):
        m.add_module("", nn.ReLU())
    with pytest.raises(TypeError):
        m.register_parameter("p", phalanx.ones([1]))
    with pytest.raises(TypeError):
        m.register_buffer("b", np.ones(1))
    with pytest.raises(TypeError):
        m.add_module("c", 3)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(phalanx.ones([1]))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_forward_is_required():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(phalanx.ones([1]))


# ---- containers ----------------------------------------------------------------------------


def test_sequential_indexing_slicing_and_editing():
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub._modules) == ["1", "2"]  # slices keep their keys, as in PyTorch
    with pytest.raises(IndexError):
        seq[3]
    d = nn.Identity()
    seq.append(d)
    assert seq[3] is d
    seq[0] = nn.GELU()
    assert isinstance(seq[0], nn.GELU)
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is c
    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 1, 1)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    assert named.act is named[1]
    x = phalanx.tensor([[-1.0, 2.0]])
    assert nn.Sequential(nn.ReLU(), nn.Identity())(x).tolist() == [[0.0, 2.0]]


def test_modulelist_and_moduledict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and isinstance(layers[1:], nn.ModuleList)
    layers.append(nn.ReLU())
    layers += [nn.Tanh()]
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == [
        "Identity",
        "Linear",
        "Linear",
        "Linear",
        "ReLU",
        "Tanh",
    ]
    del layers[0]
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]
    assert len(list(layers.parameters())) == 6
    with pytest.raises(NotImplementedError):
        layers(phalanx.ones([1, 2]))
    heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "box": nn.Linear(4, 2)})
    heads["extra"] = nn.ReLU()
    assert list(heads) == ["cls", "box", "extra"] and "box" in heads and len(heads) == 3
    assert list(heads.state_dict()) == ["cls.weight", "cls.bias", "box.weight", "box.bias"]
    assert isinstance(heads.pop("extra"), nn.ReLU) and list(heads.keys()) == ["cls", "box"]
    assert [k for k, _ in heads.items()] == ["cls", "box"] and len(list(heads.values())) == 2


# ---- state_dict and load_state_dict --------------------------------------------------------

LAYER_TWINS = [
    ("Conv2d", (3, 8, 3), {}),
    ("Conv2d", (4, 8, (3, 1)), dict(stride=2, padding=1, groups=2, bias=False)),
    ("Linear", (5, 3), {}),
    ("Linear", (5, 3), dict(bias=False)),
    ("BatchNorm1d", (4,), {}),
    ("BatchNorm2d", (4,), {}),
    ("BatchNorm2d", (4,), dict(affine=False)),
    ("BatchNorm2d", (4,), dict(track_running_stats=False)),
    ("ReLU", (), {}),
    ("MaxPool2d", (2,), {}),
    ("Dropout", (0.3,), {}),
    ("Flatten", (), {}),
    ("CrossEntropyLoss", (), {}),
]


@pytest.mark.parametrize(
    "name,args,kwargs", LAYER_TWINS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(LAYER_TWINS)]
)
def test_state_dict_keys_match_torch(name, args, kwargs):
    pm = getattr(nn, name)(*args, **kwargs)
    tm = getattr(tnn, name)(*args, **kwargs)
    assert _key_shapes(pm) == _key_shapes(tm)
    assert [n for n, _ in pm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in pm.named_buffers()] == [n for n, _ in tm.named_buffers()]


def test_weighted_loss_keeps_weight_as_buffer_like_torch():
    w = np.array([1.0, 2.0, 0.5], np.float32)
    pm = nn.CrossEntropyLoss(weight=phalanx.tensor(w))
    tm = tnn.CrossEntropyLoss(weight=torch.tensor(w))
    assert _key_shapes(pm) == _key_shapes(tm) == [("weight", (3,))]


def test_container_state_dict_keys_match_torch():
    def build(lib):
        return lib.Sequential(
            lib.Conv2d(1, 2, 3),
            lib.BatchNorm2d(2),
            lib.ReLU(),
            lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2)]),
            lib.ModuleDict({"head": lib.Linear(2, 1)}),
        )

    assert _key_shapes(build(nn)) == _key_shapes(build(tnn))


def test_state_dict_values_are_detached_views():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    assert isinstance(sd, OrderedDict)
    assert not sd["weight"].requires_grad and sd["weight"].grad_fn is None
    assert not isinstance(sd["weight"], nn.Parameter)
    with phalanx.no_grad():
        sd["bias"].fill_(7.0)  # a view, as in PyTorch: it shares the parameter's storage
    assert lin.bias.tolist() == [7.0, 7.0]
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_load_state_dict_copies_in_place():
    src, dst = Net(), Net()
    weight_before = dst.conv.weight
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.conv.weight is weight_before  # same Parameter object, so optimizers keep it
    for k, v in src.state_dict().items():
        assert_close(dst.state_dict()[k], v)
    # numpy arrays (and float64 ones) are accepted too
    arrays = {
        k: np.asarray(v.numpy(), dtype=np.float64 if v.dtype == phalanx.float32 else None)
        for k, v in src.state_dict().items()
    }
    dst.load_state_dict(arrays)
    assert dst.bn.num_batches_tracked.dtype == phalanx.int64
    dst.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})  # torch tensors too
    assert dst.conv.weight.requires_grad


def test_load_state_dict_strict_errors_like_torch():
    net = Net()
    sd = net.state_dict()
    del sd["conv.bias"]
    sd["extra.weight"] = phalanx.zeros([1])
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    assert str(err.value) == (
        'Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: "conv.bias". '
        '\n\tUnexpected key(s) in state_dict: "extra.weight". '
    )
    result = net.load_state_dict(sd, strict=False)
    assert result == (["conv.bias"], ["extra.weight"])
    assert result.missing_keys == ["conv.bias"] and result.unexpected_keys == ["extra.weight"]


def test_load_state_dict_torch_message_is_the_same():
    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 4, 3)

    class PNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

    messages = []
    for cls, lib in ((TNet, torch), (PNet, phalanx)):
        cls.__name__ = "N"
        with pytest.raises(RuntimeError) as err:
            cls().load_state_dict({"conv.weight": lib.zeros(4, 3, 3, 3), "x": lib.ones(1)})
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_load_state_dict_shape_mismatch_is_value_error_and_changes_nothing():
    net = Net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    sd = {k: np.zeros(tuple(v.shape), dtype=v.numpy().dtype) for k, v in net.state_dict().items()}
    sd["head.1.weight"] = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"head\.1\.weight.*\[3, 4\].*\[2, 4\]"):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])  # nothing was copied


def test_non_persistent_buffer_is_not_saved_or_required():
    net = Net()
    assert "scratch" not in net.state_dict()
    assert "scratch" in dict(net.named_buffers())
    net.load_state_dict(Net().state_dict())


# ---- parity with torch layers ----------------------------------------------------------------

FORWARD_TWINS = [
    ("Conv2d", (3, 6, 3), dict(padding=1), (2, 3, 7, 7)),
    ("Conv2d", (4, 4, 3), dict(stride=2, groups=4, bias=False), (2, 4, 9, 9)),
    ("Conv2d", (2, 3, 3), dict(dilation=2, padding="same"), (1, 2, 8, 8)),
    ("Conv2d", (2, 3, 3), dict(padding="valid"), (1, 2, 6, 6)),
    ("Linear", (6, 4), {}, (3, 6)),
    ("ReLU", (), {}, (2, 5)),
    ("ReLU6", (), {}, (2, 5)),
    ("LeakyReLU", (0.2,), {}, (2, 5)),
    ("GELU", (), dict(approximate="tanh"), (2, 5)),
    ("Sigmoid", (), {}, (2, 5)),
    ("Tanh", (), {}, (2, 5)),
    ("Softmax", (1,), {}, (2, 5)),
    ("LogSoftmax", (1,), {}, (2, 5)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1), (1, 2, 9, 9)),
    ("AvgPool2d", (2,), {}, (1, 2, 8, 8)),
    ("AdaptiveAvgPool2d", ((1, 1),), {}, (2, 3, 5, 5)),
    ("Flatten", (), {}, (2, 3, 2, 2)),
    ("Flatten", (0, 1), {}, (2, 3, 2)),
    ("Identity", (), {}, (2, 3)),
]


@pytest.mark.parametrize(
    "name,args,kwargs,shape",
    FORWARD_TWINS,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(FORWARD_TWINS)],
)
def test_layer_forward_and_backward_match_torch(name, args, kwargs, shape):
    pm = getattr(nn, name)(*args, **kwargs)
    tm = getattr(tnn, name)(*args, **kwargs)
    assert repr(pm) == repr(tm)
    _copy_torch_to_phalanx(tm, pm)
    x = randn(shape, seed=3)
    px, tx = phalanx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    py, ty = pm(px), tm(tx)
    assert_close(py, ty, atol=1e-4)
    g = randn(tuple(ty.shape), seed=4)
    py.backward(phalanx.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(px.grad, tx.grad, atol=1e-4)
    for (n, pp), (_, tp) in zip(pm.named_parameters(), tm.named_parameters()):
        assert_close(pp.grad, tp.grad, atol=1e-4, msg=n)


def test_losses_match_torch():
    logits = randn((6, 4), seed=1)
    target = np.array([0, 3, 1, 2, 3, -100], np.int64)
    weight = np.array([1.0, 0.5, 2.0, 1.5], np.float32)
    cases = [
        (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss()),
        (
            nn.CrossEntropyLoss(
                weight=phalanx.tensor(weight), label_smoothing=0.1, reduction="sum"
            ),
            tnn.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=0.1, reduction="sum"),
        ),
        (
            nn.CrossEntropyLoss(ignore_index=3, reduction="none"),
            tnn.CrossEntropyLoss(ignore_index=3, reduction="none"),
        ),
    ]
    safe_target = np.where(target < 0, 0, target)
    for pl, tl in cases:
        t = target if pl.ignore_index == -100 else safe_target
        assert_close(
            pl(phalanx.tensor(logits), phalanx.tensor(t)), tl(torch.tensor(logits), torch.tensor(t))
        )
    logp = np.log(np.full((6, 4), 0.25, np.float32)) + randn((6, 4), seed=2) * 0.1
    assert_close(
        nn.NLLLoss(weight=phalanx.tensor(weight))(phalanx.tensor(logp), phalanx.tensor(target)),
        tnn.NLLLoss(weight=torch.tensor(weight))(torch.tensor(logp), torch.tensor(target)),
    )
    a, b = randn((3, 4), seed=5), randn((3, 4), seed=6)
    for reduction in ("mean", "sum"):
        assert_close(
            nn.MSELoss(reduction=reduction)(phalanx.tensor(a), phalanx.tensor(b)),
            tnn.MSELoss(reduction=reduction)(torch.tensor(a), torch.tensor(b)),
        )
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(reduce=False).reduction == "none"


def _small_cnn(lib):
    return lib.Sequential(
        lib.Conv2d(3, 8, 3, padding=1, bias=False),
        lib.BatchNorm2d(8),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(8, 16, 3, stride=2, padding=1),
        lib.BatchNorm2d(16, momentum=None),
        lib.ReLU(),
        lib.AdaptiveAvgPool2d(1),
        lib.Flatten(),
        lib.Linear(16, 5),
        lib.BatchNorm1d(5),
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_small_cnn_with_torch_weights_matches_torch(mode):
    torch.manual_seed(0)
    tm = _small_cnn(tnn)
    with torch.no_grad():  # non-trivial running statistics, so eval mode tests them
        for m in tm.modules():
            if isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    pm = _small_cnn(nn)
    _copy_torch_to_phalanx(tm, pm)
    tm.train(mode == "train")
    pm.train(mode == "train")
    x = randn((4, 3, 12, 12), seed=11)
    px, tx = phalanx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    py, ty = pm(px), tm(tx)
    assert_close(py, ty, atol=1e-4)
    target = np.array([0, 1, 4, 2], np.int64)
    nn.CrossEntropyLoss()(py, phalanx.tensor(target)).backward()
    tnn.CrossEntropyLoss()(ty, torch.tensor(target)).backward()
    assert_close(px.grad, tx.grad, atol=1e-4)
    for (n, pp), (_, tp) in zip(pm.named_parameters(), tm.named_parameters()):
        assert_close(pp.grad, tp.grad, atol=1e-4, msg=n)
    for k, v in tm.state_dict().items():  # running statistics moved (or not) the same way
        assert_close(pm.state_dict()[k], v, atol=1e-5, msg=k)


# ---- modes ---------------------------------------------------------------------------------


def test_train_eval_propagate():
    net = Net()
    assert net.training and net.head[1].training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="boolean"):
        net.train("no")


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.5)
    x = phalanx.ones([1000])
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 300 < (y == 0).sum() < 700
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_batchnorm_train_uses_batch_stats_and_eval_uses_running_stats():
    bn = nn.BatchNorm2d(3)
    x = phalanx.tensor(randn((4, 3, 2, 2), seed=1) * 3 + 5)
    y = bn(x).detach().numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    bn.eval()
    y_eval = bn(x).detach().numpy()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    expect = (x.numpy() - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y_eval, expect, rtol=1e-5, atol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    bn(x)
    assert int(bn.num_batches_tracked) == 1  # eval leaves the statistics alone


@pytest.mark.parametrize(
    "cls,shape",
    [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 7))],
)
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batchnorm_running_stats_evolve_like_torch(cls, shape, momentum):
    pm = getattr(nn, cls)(3, momentum=momentum)
    tm = getattr(tnn, cls)(3, momentum=momentum)
    for step in range(3):
        x = randn(shape, seed=20 + step) * (step + 1) + step
        assert_close(pm(phalanx.tensor(x)), tm(torch.tensor(x)), atol=1e-4)
        for k, v in tm.state_dict().items():
            assert_close(pm.state_dict()[k], v, atol=1e-5, msg=f"step {step} {k}")
    assert int(pm.num_batches_tracked) == 3
    assert pm.num_batches_tracked.dtype == phalanx.int64


def test_batchnorm_without_running_stats_always_uses_batch_stats():
    pm, tm = (
        nn.BatchNorm2d(3, track_running_stats=False),
        tnn.BatchNorm2d(3, track_running_stats=False),
    )
    x = randn((2, 3, 4, 4), seed=9) + 2
    pm.eval()
    tm.eval()
    assert_close(pm(phalanx.tensor(x)), tm(torch.tensor(x)), atol=1e-5)
    assert pm.running_mean is None and list(pm.state_dict()) == ["weight", "bias"]


def test_batchnorm_input_dims_checked():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(phalanx.ones([2, 3]))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(phalanx.ones([2, 3, 4, 4]))


# ---- gradients and hooks -------------------------------------------------------------------


def test_zero_grad_and_requires_grad():
    net = Net()
    net(phalanx.randn([2, 3, 5, 5])).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0.0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1.0)
    y = lin(phalanx.ones([1, 2]))
    assert_close(y, lin.bias.detach().reshape([1, 2]) + 1.0)
    assert calls == [phalanx.Size([1, 2])]
    h1.remove()
    h2.remove()
    assert_close(lin(phalanx.zeros([1, 2])), lin.bias.detach().reshape([1, 2]))
    with lin.register_forward_hook(lambda m, a, o: o * 0.0):
        assert float(lin(phalanx.ones([1, 2])).abs().sum()) == 0.0
    assert float(lin(phalanx.ones([1, 2])).abs().sum()) != 0.0


def test_apply_visits_children_first():
    seq = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    order = []
    assert seq.apply(lambda m: order.append(type(m).__name__)) is seq
    assert order == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_to_cpu_and_dtype():
    lin = nn.Linear(2, 2)
    assert lin.to("cpu") is lin and lin.cpu() is lin and lin.float() is lin
    with pytest.raises(ValueError, match="CPU only"):
        lin.to("cuda")
    lin.to(phalanx.bfloat16)
    assert lin.weight.dtype == phalanx.bfloat16 and isinstance(lin.weight, nn.Parameter)


# ---- repr ------------------------------------------------------------------------------------


def test_repr_matches_torch_for_a_small_network():
    def build(lib):
        return lib.Sequential(
            lib.Conv2d(3, 16, 3, padding=1, bias=False),
            lib.BatchNorm2d(16),
            lib.ReLU(inplace=True),
            lib.MaxPool2d(2),
            lib.Conv2d(16, 32, (3, 5), stride=2, dilation=2, groups=4),
            lib.LeakyReLU(0.1),
            lib.GELU(),
            lib.Sigmoid(),
            lib.Tanh(),
            lib.ReLU6(),
            lib.AvgPool2d(2, 1),
            lib.AdaptiveAvgPool2d((1, 1)),
            lib.Flatten(),
            lib.Dropout(0.2),
            lib.Sequential(lib.Linear(32, 10), lib.Identity()),
            lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2), lib.ReLU()]),
            lib.ModuleDict({"a": lib.BatchNorm1d(4, momentum=None, affine=False)}),
            lib.CrossEntropyLoss(),
            lib.MSELoss(),
        )

    assert repr(build(nn)) == repr(build(tnn))


# ---- init ----------------------------------------------------------------------------------


def test_calculate_gain_and_fans_match_torch():
    for name, param in [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
        ("leaky_relu", math.sqrt(5)),
    ]:
        assert init.calculate_gain(name, param) == pytest.approx(
            tnn.init.calculate_gain(name, param)
        )
    with pytest.raises(ValueError):
        init.calculate_gain("swish")
    w = phalanx.empty([8, 4, 3, 5])
    assert init._calculate_fan_in_and_fan_out(w) == (60, 120)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(phalanx.empty([3]))


def test_uniform_normal_constant():
    t = phalanx.empty([200_000])
    assert init.uniform_(t, -2.0, 3.0) is t
    a = t.numpy()
    assert a.min() >= -2.0 and a.max() <= 3.0 and abs(a.mean() - 0.5) < 0.02
    init.normal_(t, 1.0, 0.5)
    assert abs(t.numpy().mean() - 1.0) < 0.01 and abs(t.numpy().std() - 0.5) < 0.01
    init.constant_(t, 0.25)
    assert set(np.unique(t.numpy())) == {0.25}
    init.ones_(t)
    assert t.numpy().min() == 1.0
    init.zeros_(t)
    assert t.numpy().max() == 0.0
    p = nn.Parameter(phalanx.empty([3]))
    init.uniform_(p)  # in place on a leaf that requires grad: history is not recorded
    assert p.is_leaf and p.grad_fn is None


def test_init_on_non_contiguous_tensor():
    base = phalanx.zeros([4, 6])
    view = base.t()
    init.uniform_(view, 1.0, 2.0)
    assert base.numpy().min() >= 1.0


def test_generator_makes_init_reproducible():
    a, b, c = phalanx.empty([10, 10]), phalanx.empty([10, 10]), phalanx.empty([10, 10])
    init.kaiming_normal_(a, generator=_seeded(5))
    init.kaiming_normal_(b, generator=_seeded(5))
    init.kaiming_normal_(c, generator=_seeded(6))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())


def _seeded(seed):
    g = phalanx.Generator()
    g.manual_seed(seed)
    return g


@pytest.mark.parametrize(
    "fn,kwargs,shape,expected_std,bound",
    [
        (
            "kaiming_uniform_",
            dict(a=0, nonlinearity="relu"),
            (256, 128, 3, 3),
            math.sqrt(2 / 1152),
            math.sqrt(6 / 1152),
        ),
        (
            "kaiming_uniform_",
            dict(a=math.sqrt(5)),
            (512, 1024),
            1 / math.sqrt(3 * 1024),
            1 / math.sqrt(1024),
        ),
        (
            "kaiming_normal_",
            dict(mode="fan_out", nonlinearity="relu"),
            (256, 128, 3, 3),
            math.sqrt(2 / 2304),
            None,
        ),
        (
            "kaiming_normal_",
            dict(a=0.1, mode="fan_in"),
            (512, 1024),
            math.sqrt(2 / 1.01 / 1024),
            None,
        ),
        (
            "xavier_uniform_",
            dict(gain=2.0),
            (300, 500),
            2.0 * math.sqrt(2 / 800),
            2.0 * math.sqrt(6 / 800),
        ),
        ("xavier_normal_", {}, (300, 500), math.sqrt(2 / 800), None),
    ],
)
def test_init_statistics(fn, kwargs, shape, expected_std, bound):
    t = phalanx.empty(list(shape))
    getattr(init, fn)(t, generator=_seeded(1), **kwargs)
    a = t.numpy().astype(np.float64)
    assert abs(a.std() / expected_std - 1) < 0.02
    assert abs(a.mean()) < 0.02 * expected_std * 10
    if bound is not None:
        assert np.abs(a).max() <= bound * (1 + 1e-6)
        assert np.abs(a).max() > 0.99 * bound


def test_kaiming_rejects_bad_mode_and_skips_empty():
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(phalanx.empty([3, 3]), mode="fan_avg")
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_normal_(phalanx.empty([0, 3]))


@pytest.mark.parametrize("layer", [nn.Conv2d(64, 32, 3), nn.Linear(1024, 256)])
def test_default_layer_init_is_torchs(layer):
    fan_in = int(np.prod(layer.weight.shape[1:]))
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) works out to this bound
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.03
    assert np.abs(b).max() <= bound
    bn = nn.BatchNorm2d(5)
    assert bn.weight.tolist() == [1.0] * 5 and bn.bias.tolist() == [0.0] * 5
    assert bn.running_var.tolist() == [1.0] * 5 and int(bn.num_batches_tracked) == 0


def test_conv2d_argument_checks():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="asymmetric"):
        nn.Conv2d(3, 4, 2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
