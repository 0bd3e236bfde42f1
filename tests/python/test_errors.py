"""Bad input raises the documented exception type with a message naming the values."""

import numpy as np
import pytest
from conftest import randn

import phalanx
import phalanx.nn.functional as F


def test_add_shape_mismatch_value_error():
    a, b = phalanx.ones(2, 3), phalanx.ones(4)
    for f in (lambda: a + b, lambda: phalanx.add(a, b), lambda: a * b, lambda: phalanx.sub(a, b)):
        with pytest.raises(ValueError) as ei:
            f()
        msg = str(ei.value)
        assert "[2, 3]" in msg and "[4]" in msg, msg


def test_inplace_broadcast_into_smaller_raises():
    a = phalanx.ones(3)
    with pytest.raises(ValueError):
        a.add_(phalanx.ones(2, 3))


@pytest.mark.parametrize(
    "sa,sb,named",
    [
        ((2, 3), (4, 5), ("3", "4")),
        ((3,), (4,), ("3", "4")),
        ((2, 3), (2,), ("3", "2")),
        ((2, 3, 4), (3, 4, 2), ("2", "3")),
        ((5,), (4, 3), ("5", "4")),
    ],
)
def test_matmul_shape_mismatch(sa, sb, named):
    with pytest.raises(ValueError) as ei:
        phalanx.matmul(phalanx.ones(*sa), phalanx.ones(*sb))
    for v in named:
        assert v in str(ei.value), str(ei.value)


def test_matmul_batch_broadcast_mismatch():
    with pytest.raises(ValueError):
        phalanx.ones(2, 3, 4) @ phalanx.ones(3, 4, 5)


def test_conv2d_int_input_type_error():
    x = phalanx.ones(1, 1, 4, 4, dtype=phalanx.int64)
    w = phalanx.ones(1, 1, 3, 3)
    with pytest.raises(TypeError):
        F.conv2d(x, w)


def test_mean_of_int_tensor_type_error():
    with pytest.raises(TypeError):
        phalanx.tensor([1, 2, 3]).mean()
    with pytest.raises(TypeError):
        phalanx.mean(phalanx.tensor([[1, 2], [3, 4]]), dim=0)


@pytest.mark.parametrize("size", [(-1,), (2, -3), (0, -2)])
def test_negative_size_value_error(size):
    with pytest.raises(ValueError) as ei:
        phalanx.zeros(*size)
    neg = [s for s in size if s < 0][0]
    assert str(neg) in str(ei.value)
    with pytest.raises(ValueError):
        phalanx.ones(size)


def test_conv_groups_not_dividing_channels():
    x = phalanx.ones(1, 3, 5, 5)
    w = phalanx.ones(4, 1, 3, 3)
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, w, groups=2)
    x4 = phalanx.ones(1, 4, 5, 5)
    w3 = phalanx.ones(3, 2, 3, 3)  # out_channels 3 not divisible by groups 2
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x4, w3, groups=2)


def test_conv_channel_mismatch():
    with pytest.raises(ValueError):
        F.conv2d(phalanx.ones(1, 3, 5, 5), phalanx.ones(2, 4, 3, 3))


def test_conv_kernel_larger_than_input():
    with pytest.raises(ValueError):
        F.conv2d(phalanx.ones(1, 1, 2, 2), phalanx.ones(1, 1, 3, 3))


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("bad", [5, 3, -2])
def test_loss_label_out_of_range(fn, bad):
    x = phalanx.tensor(randn((4, 3)))
    tgt = phalanx.tensor([0, bad, 1, 2])
    with pytest.raises(IndexError) as ei:
        getattr(F, fn)(x, tgt)
    assert str(bad) in str(ei.value)


def test_loss_label_out_of_range_spatial():
    x = phalanx.tensor(randn((1, 3, 2, 2)))
    tgt = phalanx.tensor([[[0, 1], [7, 2]]])
    with pytest.raises(IndexError, match="7"):
        F.cross_entropy(x, tgt)


@pytest.mark.parametrize("idx", [3, -4, (0, 5), (slice(None), 4), (0, 0, 0)])
def test_index_out_of_range(idx):
    t = phalanx.zeros(3, 4)
    with pytest.raises(IndexError):
        t[idx]


def test_setitem_out_of_range():
    t = phalanx.zeros(3, 4)
    with pytest.raises(IndexError):
        t[3] = 1.0


def test_integer_tensor_index_out_of_range():
    t = phalanx.zeros(3, 4)
    with pytest.raises(IndexError):
        t[phalanx.tensor([0, 3])]


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(2),
        lambda t: t.transpose(0, 2),
        lambda t: t.size(5),
        lambda t: t.unsqueeze(4),
        lambda t: t.argmax(-3),
        lambda t: t.max(dim=2),
        lambda t: F.softmax(t, 3),
        lambda t: t.squeeze(2),
        lambda t: phalanx.cat([t, t], dim=2),
    ],
)
def test_dim_out_of_range(call):
    with pytest.raises(IndexError):
        call(phalanx.ones(2, 3))


def test_from_numpy_negative_stride():
    a = np.arange(6, dtype=np.float32)[::-1]
    with pytest.raises(ValueError):
        phalanx.from_numpy(a)
    b = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::-2]
    with pytest.raises(ValueError):
        phalanx.from_numpy(b)


def test_view_on_noncontiguous_mentions_reshape():
    t = phalanx.zeros(3, 4).t()
    with pytest.raises(ValueError, match="reshape"):
        t.view(12)
    assert tuple(t.reshape(12).shape) == (12,)


def test_view_bad_numel():
    with pytest.raises(ValueError) as ei:
        phalanx.zeros(2, 3).view(4, 2)
    assert "6" in str(ei.value)
    with pytest.raises(ValueError):
        phalanx.zeros(2, 3).reshape(5, -1)
    with pytest.raises(ValueError):
        phalanx.zeros(2, 3).view(-1, -1)


def test_expand_bad_size():
    with pytest.raises(ValueError):
        phalanx.zeros(3, 2).expand(3, 4)


def test_permute_bad_dims():
    with pytest.raises((ValueError, IndexError)):
        phalanx.zeros(2, 3).permute(0, 0)


def test_cat_stack_shape_mismatch():
    with pytest.raises(ValueError):
        phalanx.cat([phalanx.zeros(2, 3), phalanx.zeros(2, 4)], dim=0)
    with pytest.raises(ValueError):
        phalanx.stack([phalanx.zeros(2, 3), phalanx.zeros(3, 2)])


def test_linear_shape_mismatch():
    with pytest.raises(ValueError):
        F.linear(phalanx.ones(2, 3), phalanx.ones(4, 5))


def test_batch_norm_channel_mismatch():
    with pytest.raises(ValueError):
        F.batch_norm(phalanx.ones(2, 3, 4, 4), phalanx.zeros(4), phalanx.ones(4), training=False)


def test_pool_output_too_small():
    with pytest.raises(ValueError):
        F.max_pool2d(phalanx.ones(1, 1, 2, 2), 3)
    with pytest.raises(ValueError):
        F.avg_pool2d(phalanx.ones(1, 1, 2, 2), 3)


def test_pool_padding_too_large():
    with pytest.raises(ValueError):
        F.max_pool2d(phalanx.ones(1, 1, 8, 8), 2, padding=2)


def test_cross_entropy_batch_mismatch():
    with pytest.raises(ValueError):
        F.cross_entropy(phalanx.ones(4, 3), phalanx.tensor([0, 1]))


def test_softmax_of_int_tensor_type_error():
    with pytest.raises(TypeError):
        F.softmax(phalanx.tensor([1, 2, 3]), 0)
