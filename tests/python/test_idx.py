"""The IDX reader of phalanx.utils.data: round trips, every error, and the real Fashion-MNIST."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from phalanx.utils.data import DEFAULT_FASHION_MNIST_ROOT, load_fashion_mnist, read_idx

_TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}

TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """The IDX encoding of arr; `magic` overrides the first four bytes."""
    code = _TYPE_CODES[arr.dtype.type]
    head = struct.pack(">I", magic) if magic is not None else bytes([0, 0, code, arr.ndim])
    dims = b"".join(struct.pack(">I", s) for s in arr.shape)
    return head + dims + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, compress: bool):
    path = str(path) + (".gz" if compress else "")
    with gzip.open(path, "wb") if compress else open(path, "wb") as f:
        f.write(data)
    return path


def make_dataset(
    root, n: int = 5, compress: bool = True, train: bool = True, n_labels=None, seed: int = 0
):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n if n_labels is None else n_labels).astype(np.uint8)
    names = TRAIN if train else TEST
    write(os.path.join(root, names[0]), idx_bytes(images), compress)
    write(os.path.join(root, names[1]), idx_bytes(labels), compress)
    return images, labels


# ---------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trip(tmp_path, compress, dtype):
    arr = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    path = write(tmp_path / "a.idx", idx_bytes(arr), compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # writable


def test_read_idx_accepts_pathlike_and_scalar_and_empty(tmp_path):
    p = tmp_path / "s.idx"
    p.write_bytes(idx_bytes(np.array(7, dtype=np.int32)))
    assert read_idx(p).shape == () and read_idx(p) == 7
    p.write_bytes(idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    assert read_idx(p, expected_magic=2051).shape == (0, 28, 28)


def test_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    plain_named_gz = tmp_path / "plain.gz"
    plain_named_gz.write_bytes(idx_bytes(arr))
    gz_named_plain = tmp_path / "gz.idx"
    gz_named_plain.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(plain_named_gz), arr)
    np.testing.assert_array_equal(read_idx(gz_named_plain), arr)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_load_fashion_mnist_round_trip(tmp_path, compress, train):
    images, labels = make_dataset(tmp_path, n=7, compress=compress, train=train)
    x, y = load_fashion_mnist(tmp_path, train=train)
    assert x.dtype == np.uint8 and x.shape == (7, 28, 28)
    assert y.dtype == np.int64 and y.shape == (7,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_load_fashion_mnist_accepts_str_root_and_mixed_compression(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 4], np.uint8)
    write(tmp_path / TRAIN[0], idx_bytes(images), compress=True)
    write(tmp_path / TRAIN[1], idx_bytes(labels), compress=False)
    x, y = load_fashion_mnist(str(tmp_path))
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == [0, 9, 4]


# ---------------------------------------------------------------------------------------- errors


def test_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist(missing)
    assert str(missing) in str(e.value)
    assert "apt-get install dataset-fashion-mnist" in str(e.value)


def test_missing_file(tmp_path):
    make_dataset(tmp_path, train=True)
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist(tmp_path, train=False)  # only the training files exist
    msg = str(e.value)
    assert os.path.join(str(tmp_path), TEST[0]) in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_missing_labels_file(tmp_path):
    make_dataset(tmp_path)
    os.remove(os.path.join(tmp_path, TRAIN[1] + ".gz"))
    with pytest.raises(FileNotFoundError, match=TRAIN[1]):
        load_fashion_mnist(tmp_path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        read_idx(tmp_path / "nope.idx")


@pytest.mark.parametrize("compress", [False, True])
def test_wrong_magic(tmp_path, compress):
    make_dataset(tmp_path, compress=compress)
    # A labels file where the images file should be: magic 2049 instead of 2051.
    write(tmp_path / TRAIN[0], idx_bytes(np.zeros(5, np.uint8)), compress)
    with pytest.raises(ValueError) as e:
        load_fashion_mnist(tmp_path)
    msg = str(e.value)
    assert TRAIN[0] in msg and "magic" in msg
    assert "expected 2051" in msg and "found 2049" in msg


def test_not_an_idx_file(tmp_path):
    p = tmp_path / "junk.idx"
    p.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match=r"junk\.idx.*magic number 1347093252"):
        read_idx(p)
    with pytest.raises(ValueError, match="expected 2049 .* found 1347093252"):
        read_idx(p, expected_magic=2049)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data(tmp_path, compress):
    make_dataset(tmp_path, n=5, compress=compress)
    data = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    write(tmp_path / TRAIN[0], data[:-100], compress)
    with pytest.raises(ValueError) as e:
        load_fashion_mnist(tmp_path)
    msg = str(e.value)
    assert TRAIN[0] in msg and "truncated" in msg
    assert str(5 * 28 * 28) in msg and str(5 * 28 * 28 - 100) in msg


def test_trailing_bytes(tmp_path):
    p = tmp_path / "long.idx"
    p.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00\x00")
    with pytest.raises(ValueError, match="needs 4 data bytes, found 6"):
        read_idx(p)


@pytest.mark.parametrize("cut", [0, 3, 7])
def test_truncated_header(tmp_path, cut):
    p = tmp_path / "short.idx"
    p.write_bytes(idx_bytes(np.zeros((2, 2, 2), np.uint8))[:cut])
    with pytest.raises(ValueError, match=r"short\.idx.*truncated IDX header"):
        read_idx(p)


def test_truncated_gzip_stream(tmp_path):
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))[:-20])
    with pytest.raises(ValueError, match=r"cut\.gz.*gzip"):
        read_idx(p)


def test_count_mismatch(tmp_path):
    make_dataset(tmp_path, n=5, n_labels=4)
    with pytest.raises(ValueError) as e:
        load_fashion_mnist(tmp_path)
    msg = str(e.value)
    assert "5 images" in msg and "4 labels" in msg
    assert TRAIN[0] in msg and TRAIN[1] in msg


def test_wrong_image_size(tmp_path):
    make_dataset(tmp_path)
    write(tmp_path / TRAIN[0], idx_bytes(np.zeros((5, 32, 32), np.uint8)), compress=True)
    with pytest.raises(ValueError, match="28x28, got 32x32"):
        load_fashion_mnist(tmp_path)


def test_label_out_of_range(tmp_path):
    make_dataset(tmp_path, n=3)
    write(tmp_path / TRAIN[1], idx_bytes(np.array([1, 10, 2], np.uint8)), compress=True)
    with pytest.raises(ValueError, match="label 10 out of range"):
        load_fashion_mnist(tmp_path)


# ------------------------------------------------------------------------- the real data, if any

_HAVE_REAL = os.path.isfile(
    os.path.join(DEFAULT_FASHION_MNIST_ROOT, TRAIN[0] + ".gz")
) or os.path.isfile(os.path.join(DEFAULT_FASHION_MNIST_ROOT, TRAIN[0]))


@pytest.mark.skipif(not _HAVE_REAL, reason="apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist():
    x, y = load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and y.dtype == np.int64
    assert sorted(np.unique(y).tolist()) == list(range(10))
    assert np.bincount(y).tolist() == [6000] * 10
    # The normalisation constants of the example.
    assert abs(x.mean() / 255 - 0.2860) < 1e-3 and abs(x.std() / 255 - 0.3530) < 1e-3
    xt, yt = load_fashion_mnist(train=False)
    assert xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    assert np.bincount(yt).tolist() == [1000] * 10
