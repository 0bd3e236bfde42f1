"""Copies of views whose last two dimensions are swapped (x.t(), permutes ending in
(..., j, i)) take a tiled path in Tensor::copy_from: values against numpy for sizes around
the tile (32), leading dimensions, broadcast sources, dtype conversions and in-place copies
into strided destinations."""

import numpy as np
import pytest

import phalanx


@pytest.mark.parametrize(
    "shape, perm",
    [
        ((33, 64), (1, 0)),
        ((100, 37), (1, 0)),
        ((31, 200), (1, 0)),  # too short for tiles: the row path
        ((3, 40, 50), (0, 2, 1)),
        ((4, 5, 48, 36), (0, 1, 3, 2)),
        ((2, 48, 3, 40), (2, 0, 3, 1)),  # the last two swapped among leading ones
        ((64, 2, 70), (1, 2, 0)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_contiguous_of_a_transposed_view_matches_numpy(shape, perm, dtype):
    a = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    got = phalanx.from_numpy(a).permute(*perm).contiguous()
    assert got.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), np.ascontiguousarray(a.transpose(perm)))


def test_copy_into_a_strided_destination_and_across_dtypes():
    a = np.random.default_rng(0).standard_normal((70, 90)).astype(np.float32)
    dst = phalanx.zeros(90, 100, dtype=phalanx.float64)
    dst[:, 5:75].copy_(phalanx.from_numpy(a).t())  # rows of 100, a window of 70
    want = np.zeros((90, 100))
    want[:, 5:75] = a.T
    np.testing.assert_array_equal(dst.numpy(), want)


def test_a_broadcast_source_copies_as_a_transposed_one():
    col = np.arange(40, dtype=np.float32).reshape(40, 1)
    dst = phalanx.zeros(40, 50)
    dst.copy_(phalanx.from_numpy(col).expand(40, 50))  # stride 0 in the last dimension
    np.testing.assert_array_equal(dst.numpy(), np.broadcast_to(col, (40, 50)))
