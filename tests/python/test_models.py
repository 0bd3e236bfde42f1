"""phalanx.models: published parameter counts, torchvision-compatible keys, and outputs equal to
torch twins carrying the same weights."""

import functools

import numpy as np
import pytest
from conftest import assert_close, randn

import phalanx
import phalanx.models as models
import phalanx.nn as nn


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def _num_stored(module):
    """Floats in the state_dict: parameters plus BN running statistics."""
    return sum(
        v.numel() for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")
    )


def _key_shapes(module):
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


# ---- parameter counts (no forward needed) ------------------------------------------------------


@functools.cache
def _shared(name):
    """One instance per model for the read-only tests: building ResNet-50 costs seconds."""
    return {
        "resnet18": models.resnet18,
        "resnet34": models.resnet34,
        "resnet50": models.resnet50,
        "mobilenet_v1": models.mobilenet_v1,
        "tiny_yolov2": models.tiny_yolov2_backbone,
        "lenet5": models.LeNet5,
        "lenet5_32x32": lambda: models.LeNet5(input_size=32),
    }[name]()


PUBLISHED = [
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
    ("mobilenet_v1", 4_231_976),
    ("lenet5_32x32", 61_706),
    ("lenet5", 61_706),  # the 28x28 variant: padding=2 in C1 adds no weights
    ("tiny_yolov2", 15_861_773),
]


@pytest.mark.parametrize("name,count", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_parameter_counts(name, count):
    assert _num_params(_shared(name)) == count


def test_mlp_parameter_count():
    assert _num_params(models.MLP(784, (256, 128), 10)) == 784 * 256 + 256 + 256 * 128 + 128 + 1290


def test_tiny_yolov2_published_count_includes_running_stats():
    # the usual 15,867,885 figure is darknet's weights file: weights + BN running mean and var
    assert _num_stored(_shared("tiny_yolov2")) == 15_867_885


def test_resnet_cifar_stem_and_classes():
    m = models.resnet18(num_classes=10, stem="cifar")
    assert tuple(m.conv1.weight.shape) == (64, 3, 3, 3) and isinstance(m.maxpool, nn.Identity)
    assert _num_params(m) == 11_689_512 - 64 * 3 * (49 - 9) - 990 * 513
    with pytest.raises(ValueError, match="stem"):
        models.resnet18(stem="tiny")


def test_conv_bn_act_block_slices_to_a_sequential():
    block = models.mobilenet_v1(num_classes=10, width_mult=0.25).features[1].depthwise
    head = block[:2]
    assert type(head) is nn.Sequential and list(head._modules) == ["0", "1"]


def test_resnet_init_is_torchvisions():
    m = models.resnet18(zero_init_residual=True)
    w = m.layer1[0].conv1.weight.detach().numpy()
    assert abs(w.std() / np.sqrt(2 / (64 * 9)) - 1) < 0.05  # He-normal over fan_out
    assert float(m.layer1[0].bn2.weight.abs().sum()) == 0.0
    assert float(m.layer1[0].bn1.weight.sum()) == 64.0


# ---- forward shapes ------------------------------------------------------------------------------


def test_small_models_forward_and_backward():
    for model, shape in [
        (models.LeNet5(), (2, 1, 28, 28)),
        (models.LeNet5(input_size=32), (2, 1, 32, 32)),
        (models.MLP(784, (32,), 10, dropout=0.1), (3, 1, 28, 28)),
    ]:
        y = model(phalanx.randn(list(shape)))
        assert tuple(y.shape) == (shape[0], 10)
        y.sum().backward()
        assert all(p.grad is not None for p in model.parameters())


def test_tiny_yolov2_gives_a_13x13_grid_at_416():
    model = models.tiny_yolov2_backbone().eval()
    with phalanx.no_grad():
        y = model(phalanx.randn([1, 3, 416, 416]))
    assert tuple(y.shape) == (1, 125, 13, 13)


def test_resnet50_forward_at_small_input():
    model = _shared("resnet50").eval()
    try:
        with phalanx.no_grad():
            assert tuple(model(phalanx.randn([1, 3, 32, 32])).shape) == (1, 1000)
    finally:
        model.train()


# ---- torch twins -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twins():
    """Minimal torch builds of the same networks, written as torchvision writes them."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    tf = torch.nn.functional

    def conv3x3(i, o, s=1):
        return tnn.Conv2d(i, o, 3, s, 1, bias=False)

    class BasicBlock(tnn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1, self.bn1 = conv3x3(inplanes, planes, stride), tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2, self.bn2 = conv3x3(planes, planes), tnn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + idt)

    class Bottleneck(tnn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2, self.bn2 = conv3x3(planes, planes, stride), tnn.BatchNorm2d(planes)
            self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = tnn.BatchNorm2d(planes * 4)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + idt)

    class ResNet(tnn.Module):
        def __init__(self, block, layers, num_classes=1000, cifar=False):
            super().__init__()
            self.inplanes = 64
            self.conv1 = (
                tnn.Conv2d(3, 64, 3, 1, 1, bias=False)
                if cifar
                else tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            )
            self.bn1, self.relu = tnn.BatchNorm2d(64), tnn.ReLU(inplace=True)
            self.maxpool = tnn.Identity() if cifar else tnn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(block, 64, layers[0])
            self.layer2 = self._make_layer(block, 128, layers[1], 2)
            self.layer3 = self._make_layer(block, 256, layers[2], 2)
            self.layer4 = self._make_layer(block, 512, layers[3], 2)
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(512 * block.expansion, num_classes)

        def _make_layer(self, block, planes, blocks, stride=1):
            down = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                down = tnn.Sequential(
                    tnn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                    tnn.BatchNorm2d(planes * block.expansion),
                )
            layers = [block(self.inplanes, planes, stride, down)]
            self.inplanes = planes * block.expansion
            layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
            return tnn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def conv_bn(i, o, k, s, groups=1, act=None):
        return tnn.Sequential(
            tnn.Conv2d(i, o, k, s, (k - 1) // 2, groups=groups, bias=False),
            tnn.BatchNorm2d(o),
            act or tnn.ReLU(inplace=True),
        )

    class DepthwiseSeparable(tnn.Module):
        def __init__(self, i, o, s):
            super().__init__()
            self.depthwise = conv_bn(i, i, 3, s, groups=i)
            self.pointwise = conv_bn(i, o, 1, 1)

        def forward(self, x):
            return self.pointwise(self.depthwise(x))

    class MobileNetV1(tnn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            cfg = (
                [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
                + [(512, 1)] * 5
                + [(1024, 2), (1024, 1)]
            )
            layers, c = [conv_bn(3, 32, 3, 2)], 32
            for o, s in cfg:
                layers.append(DepthwiseSeparable(c, o, s))
                c = o
            self.features = tnn.Sequential(*layers)
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(1024, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))

    class DarknetPool(tnn.Module):
        def forward(self, x):  # darknet: pad bottom/right, padding never wins the max
            return tf.max_pool2d(tf.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 1)

    class TinyYOLOv2(tnn.Module):
        def __init__(self, num_classes=20, num_anchors=5):
            super().__init__()
            layers, c = [], 3
            for i, o in enumerate((16, 32, 64, 128, 256, 512)):
                layers += [
                    conv_bn(c, o, 3, 1, act=tnn.LeakyReLU(0.1)),
                    tnn.MaxPool2d(2, 2) if i < 5 else DarknetPool(),
                ]
                c = o
            layers += [
                conv_bn(512, 1024, 3, 1, act=tnn.LeakyReLU(0.1)),
                conv_bn(1024, 1024, 3, 1, act=tnn.LeakyReLU(0.1)),
            ]
            self.features = tnn.Sequential(*layers)
            self.head = tnn.Conv2d(1024, num_anchors * (5 + num_classes), 1)

        def forward(self, x):
            return self.head(self.features(x))

    class LeNet5(tnn.Module):
        def __init__(self, pad):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(1, 6, 5, padding=pad),
                tnn.ReLU(),
                tnn.MaxPool2d(2),
                tnn.Conv2d(6, 16, 5),
                tnn.ReLU(),
                tnn.MaxPool2d(2),
            )
            self.classifier = tnn.Sequential(
                tnn.Flatten(),
                tnn.Linear(400, 120),
                tnn.ReLU(),
                tnn.Linear(120, 84),
                tnn.ReLU(),
                tnn.Linear(84, 10),
            )

        def forward(self, x):
            return self.classifier(self.features(x))

    class Twins:
        pass

    t = Twins()
    t.torch = torch
    t.resnet18 = lambda **kw: ResNet(BasicBlock, [2, 2, 2, 2], **kw)
    t.resnet34 = lambda **kw: ResNet(BasicBlock, [3, 4, 6, 3], **kw)
    t.resnet50 = lambda **kw: ResNet(Bottleneck, [3, 4, 6, 3], **kw)
    t.mobilenet_v1 = MobileNetV1
    t.tiny_yolov2 = TinyYOLOv2
    t.lenet5 = LeNet5
    return t


def _randomise_bn(torch, model, seed=0):
    """Non-trivial BN statistics and affine terms, so eval mode really tests them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)


def _load_from_torch(pm, tm):
    return pm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})


@pytest.mark.parametrize(
    "name,build",
    [
        ("resnet18", lambda t: (_shared("resnet18"), t.resnet18())),
        ("resnet34", lambda t: (_shared("resnet34"), t.resnet34())),
        ("resnet50", lambda t: (_shared("resnet50"), t.resnet50())),
        (
            "resnet18_cifar",
            lambda t: (models.resnet18(10, stem="cifar"), t.resnet18(num_classes=10, cifar=True)),
        ),
        ("mobilenet_v1", lambda t: (_shared("mobilenet_v1"), t.mobilenet_v1())),
        ("tiny_yolov2", lambda t: (_shared("tiny_yolov2"), t.tiny_yolov2())),
        ("lenet5", lambda t: (_shared("lenet5"), t.lenet5(2))),
    ],
)
def test_state_dict_keys_and_counts_match_torch_twin(twins, name, build):
    pm, tm = build(twins)
    assert _key_shapes(pm) == _key_shapes(tm)
    assert _num_params(pm) == sum(p.numel() for p in tm.parameters())
    assert _num_stored(pm) == sum(
        v.numel() for k, v in tm.state_dict().items() if not k.endswith("num_batches_tracked")
    )


def test_resnet18_has_torchvision_keys():
    keys = list(_shared("resnet18").state_dict())
    for key in [
        "conv1.weight",
        "bn1.running_mean",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_var",
        "layer4.1.bn2.bias",
        "fc.weight",
        "fc.bias",
    ]:
        assert key in keys
    assert len(keys) == 122  # torchvision's resnet18 state_dict has 122 entries


def test_resnet18_cifar_with_torch_weights_matches_in_eval(twins):
    torch = twins.torch
    torch.manual_seed(0)
    tm = twins.resnet18(num_classes=10, cifar=True)
    _randomise_bn(torch, tm)
    pm = models.resnet18(num_classes=10, stem="cifar")
    _load_from_torch(pm, tm)
    tm.eval()
    pm.eval()
    x = randn((2, 3, 32, 32), seed=1)
    with torch.no_grad(), phalanx.no_grad():
        assert_close(pm(phalanx.tensor(x)), tm(torch.tensor(x)), rtol=1e-3, atol=1e-4)


def test_resnet18_cifar_train_step_matches_torch(twins):
    torch = twins.torch
    torch.manual_seed(1)
    tm = twins.resnet18(num_classes=10, cifar=True)
    pm = models.resnet18(num_classes=10, stem="cifar")
    _load_from_torch(pm, tm)
    x = randn((2, 3, 16, 16), seed=2)  # layer4's BN sees 8 values per channel: well conditioned
    target = np.array([3, 7], np.int64)
    p_loss = nn.CrossEntropyLoss()(pm(phalanx.tensor(x)), phalanx.tensor(target))
    t_loss = torch.nn.CrossEntropyLoss()(tm(torch.tensor(x)), torch.tensor(target))
    assert_close(p_loss, t_loss, rtol=1e-4, atol=1e-5)
    p_loss.backward()
    t_loss.backward()
    t_params = dict(tm.named_parameters())
    for name in [
        "fc.weight",
        "layer4.1.bn2.weight",
        "layer2.0.downsample.0.weight",
        "conv1.weight",
    ]:
        p_grad = dict(pm.named_parameters())[name].grad
        assert_close(p_grad, t_params[name].grad, rtol=1e-3, atol=1e-4, msg=name)
    for key in ["bn1.running_mean", "layer3.1.bn1.running_var", "layer4.0.bn1.num_batches_tracked"]:
        assert_close(pm.state_dict()[key], tm.state_dict()[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("name", ["mobilenet_v1", "tiny_yolov2", "lenet5"])
def test_other_models_with_torch_weights_match_in_eval(twins, name):
    torch = twins.torch
    torch.manual_seed(2)
    if name == "mobilenet_v1":
        pm, tm, shape = models.mobilenet_v1(num_classes=1000), twins.mobilenet_v1(), (1, 3, 64, 64)
    elif name == "tiny_yolov2":
        pm, tm, shape = models.tiny_yolov2_backbone(), twins.tiny_yolov2(), (1, 3, 64, 64)
    else:
        pm, tm, shape = models.LeNet5(), twins.lenet5(2), (2, 1, 28, 28)
    _randomise_bn(torch, tm)
    _load_from_torch(pm, tm)
    tm.eval()
    pm.eval()
    x = randn(shape, seed=3)
    with torch.no_grad(), phalanx.no_grad():
        assert_close(pm(phalanx.tensor(x)), tm(torch.tensor(x)), rtol=1e-3, atol=1e-4)


def test_darknet_pool_equals_minus_inf_padding(twins):
    torch = twins.torch
    x = randn((2, 3, 5, 6), seed=4)
    xp = phalanx.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yp = models.DarknetMaxPool2d(2)(xp)
    yt = torch.nn.functional.max_pool2d(
        torch.nn.functional.pad(xt, (0, 1, 0, 1), value=float("-inf")), 2, 1
    )
    assert_close(yp, yt)
    g = randn(tuple(yt.shape), seed=5)
    yp.backward(phalanx.tensor(g))
    yt.backward(torch.tensor(g))
    assert_close(xp.grad, xt.grad)
