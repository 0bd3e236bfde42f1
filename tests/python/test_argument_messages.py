"""Bad layer arguments are refused naming the argument and its value (not "oneDNN: could not
create a descriptor"), in C++ before oneDNN and in the modules' constructors."""

import pytest

import phalanx
import phalanx.nn.functional as F


def _x():
    return phalanx.zeros(1, 1, 4, 4)


@pytest.mark.parametrize(
    "call, text",
    [
        (lambda: F.conv2d(_x(), phalanx.zeros(1, 1, 0, 3)), "kernel size"),
        (lambda: F.conv2d(_x(), phalanx.zeros(1, 1, 3, 3), stride=2**40), "stride"),
        (lambda: F.conv2d(_x(), phalanx.zeros(1, 1, 3, 3), padding=2**31), "padding"),
        (lambda: F.conv2d(_x(), phalanx.zeros(1, 1, 3, 3), dilation=2**40), "dilation"),
        (lambda: F.max_pool2d(_x(), 2, stride=2**40), "stride"),
        (lambda: F.avg_pool2d(_x(), 2, stride=2**40), "stride"),
        (lambda: F.max_pool2d(_x(), 2, padding=2), "padding"),
    ],
)
def test_functional_names_argument_and_value(call, text):
    with pytest.raises(ValueError) as ei:
        call()
    msg = str(ei.value)
    assert text in msg and "oneDNN" not in msg, msg


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: phalanx.nn.Conv2d(1, 1, 0), "kernel_size"),
        (lambda: phalanx.nn.Conv2d(1, 1, 3, stride=0), "stride"),
        (lambda: phalanx.nn.Conv2d(1, 1, 3, stride=2**40), "1099511627776"),
        (lambda: phalanx.nn.Conv2d(1, 1, 3, padding=-1), "padding"),
        (lambda: phalanx.nn.Conv2d(1, 1, 3, dilation=0), "dilation"),
        (lambda: phalanx.nn.Conv2d(-1, 1, 3), "in_channels"),
        (lambda: phalanx.nn.MaxPool2d(2, padding=2), "padding"),
        (lambda: phalanx.nn.MaxPool2d(0), "kernel_size"),
        (lambda: phalanx.nn.AvgPool2d(2, stride=0), "stride"),
        (lambda: phalanx.nn.AvgPool2d(3, padding=2), "padding"),
        (lambda: phalanx.nn.Linear(-1, 3), "in_features"),
        (lambda: phalanx.nn.Linear(3, -2), "out_features"),
    ],
)
def test_constructors_name_argument_and_value(make, text):
    with pytest.raises(ValueError, match=text):
        make()


def test_linear_with_zero_features_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b = phalanx.zeros(2, 0, requires_grad=True), phalanx.zeros(3, 0), phalanx.ones(3)
    w.requires_grad_(True)
    b.requires_grad_(True)
    y = F.linear(x, w, b)
    assert (
        y.tolist()
        == torch.nn.functional.linear(torch.zeros(2, 0), torch.zeros(3, 0), torch.ones(3)).tolist()
    )
    y.sum().backward()
    assert x.grad.shape == (2, 0) and w.grad.shape == (3, 0)
    assert b.grad.tolist() == [2.0, 2.0, 2.0]
    assert phalanx.nn.Linear(0, 3)(phalanx.zeros(4, 0)).shape == (4, 3)


def test_integer_tensor_to_negative_integer_power_is_refused():
    with pytest.raises(ValueError, match="Integers to negative integer powers are not allowed"):
        phalanx.tensor([2]).pow(-1)
    with pytest.raises(ValueError, match="Integers to negative integer powers are not allowed"):
        phalanx.tensor([2, 3]) ** phalanx.tensor([1, -2])
    assert phalanx.tensor([2]).pow(2).tolist() == [4]
    assert phalanx.tensor([2.0]).pow(-1).tolist() == [0.5]
