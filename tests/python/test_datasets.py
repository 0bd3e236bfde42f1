"""The datasets: MNIST/FashionMNIST from IDX files, CIFAR-10 from its binary format, download
with checksum verification (via file:// URLs), SyntheticImages, and the real Fashion-MNIST."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct

import numpy as np
import pytest

import phalanx
from phalanx.utils.data import (
    CIFAR10,
    DEFAULT_FASHION_MNIST_ROOT,
    MNIST,
    DataLoader,
    FashionMNIST,
    Subset,
    SyntheticImages,
    default_collate,
)
from phalanx.utils.data import transforms as T
from phalanx.utils.data.datasets import check_integrity, download_url

TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return head + arr.tobytes()


def write_mnist(root, n=6, train=True, compress=True, seed=0, side=28, n_labels=None):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n if n_labels is None else n_labels).astype(np.uint8)
    os.makedirs(root, exist_ok=True)
    for base, arr in zip(TRAIN if train else TEST, (images, labels)):
        path = os.path.join(root, base + (".gz" if compress else ""))
        data = idx_bytes(arr)
        with open(path, "wb") as f:
            f.write(gzip.compress(data) if compress else data)
    return images, labels


def write_cifar(folder, counts=(3, 2, 4, 1, 2), test=3, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    out = {}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, n in zip(names, list(counts) + [test]):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        pixels = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        records = np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(records.tobytes())
        out[name] = (pixels, labels)
    return out


# ----------------------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("compress", [True, False])
def test_mnist_like_from_idx(tmp_path, cls, compress):
    images, labels = write_mnist(tmp_path, n=6, compress=compress)
    write_mnist(tmp_path, n=4, train=False, compress=compress, seed=1)
    ds = cls(tmp_path)
    assert len(ds) == 6 and len(cls(tmp_path, train=False)) == 4
    img, target = ds[2]
    assert isinstance(img, phalanx.Tensor) and img.dtype == phalanx.uint8
    assert tuple(img.shape) == (28, 28) and isinstance(target, int)
    np.testing.assert_array_equal(img.numpy(), images[2])
    assert target == labels[2]
    assert tuple(ds.data.shape) == (6, 28, 28) and ds.targets.dtype == phalanx.int64
    assert len(ds.classes) == 10


def test_torchvision_raw_layout(tmp_path):
    images, _ = write_mnist(tmp_path / "MNIST" / "raw", n=3)
    np.testing.assert_array_equal(MNIST(tmp_path).data.numpy(), images)


def test_mnist_loader_fast_path_equals_sample_path(tmp_path):
    write_mnist(tmp_path, n=23)
    tf = T.Compose(
        [
            T.RandomCrop(28, padding=2),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize((0.286,), (0.353,)),
        ]
    )
    ds = FashionMNIST(tmp_path, transform=tf)
    assert ds.supports_get_batch

    def epoch(**kw):
        loader = DataLoader(ds, batch_size=5, shuffle=True, generator=phalanx.Generator(1), **kw)
        return [(x.numpy(), y.numpy()) for x, y in loader]

    fast, slow, threaded = epoch(), epoch(collate_fn=default_collate), epoch(num_workers=2)
    assert len(fast) == 5
    assert fast[0][0].shape == (5, 1, 28, 28) and fast[0][0].dtype == np.float32
    assert fast[0][1].dtype == np.int64
    for (a, la), (b, lb), (c, lc) in zip(fast, slow, threaded):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(la, lc)


def test_no_transform_and_custom_transform_batches(tmp_path):
    images, labels = write_mnist(tmp_path, n=7)
    ds = MNIST(tmp_path)
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.dtype == phalanx.uint8 and tuple(x.shape) == (4, 28, 28)
    np.testing.assert_array_equal(x.numpy(), images[:4])
    assert y.tolist() == labels[:4].tolist()
    ds.transform = T.Compose([T.ToTensor(), T.Lambda(lambda t: t * 2)])  # no batch equivalent
    assert not ds.supports_get_batch
    x, _ = next(iter(DataLoader(ds, batch_size=4)))
    np.testing.assert_allclose(x.numpy()[:, 0], images[:4].astype(np.float32) / 255 * 2, rtol=1e-6)
    ds.transform = None
    ds.target_transform = lambda t: t + 100
    assert next(iter(DataLoader(ds, batch_size=2)))[1].tolist() == (labels[:2] + 100).tolist()
    sub = Subset(MNIST(tmp_path, transform=T.ToTensor()), [6, 1])
    x, y = next(iter(DataLoader(sub, batch_size=2)))
    np.testing.assert_array_equal(x.numpy()[:, 0], images[[6, 1]].astype(np.float32) / 255)


def test_batch_transform_as_dataset_transform(tmp_path):
    images, _ = write_mnist(tmp_path, n=4)
    ds = MNIST(tmp_path, transform=T.BatchTransform(mean=0.5, std=0.5))
    img, _ = ds[-1]
    np.testing.assert_allclose(img.numpy()[0], (images[3] / np.float32(255) - 0.5) / 0.5, rtol=1e-6)


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        FashionMNIST(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value) and "download=True" in str(e.value)
    write_mnist(tmp_path, train=True)
    with pytest.raises(FileNotFoundError) as e:
        MNIST(tmp_path, train=False)
    assert os.path.join(str(tmp_path), TEST[0]) in str(e.value)


def test_corrupt_files_name_the_path(tmp_path):
    write_mnist(tmp_path, n=5, compress=False)
    images_path = os.path.join(tmp_path, TRAIN[0])
    data = open(images_path, "rb").read()
    with open(images_path, "wb") as f:
        f.write(data[:-50])
    with pytest.raises(ValueError, match=f"{images_path}: truncated IDX data"):
        MNIST(tmp_path)
    with open(images_path, "wb") as f:
        f.write(idx_bytes(np.zeros(5, np.uint8)))  # a labels file in the images' place
    with pytest.raises(ValueError, match="expected 2051 .* found 2049") as e:
        MNIST(tmp_path)
    assert images_path in str(e.value)
    write_mnist(tmp_path, n=5, n_labels=4, compress=False)
    with pytest.raises(ValueError, match="5 images .* 4 labels"):
        MNIST(tmp_path)
    write_mnist(tmp_path, n=5, side=32, compress=False)
    with pytest.raises(ValueError, match="28x28, got 32x32"):
        MNIST(tmp_path)
    gz = os.path.join(tmp_path, "g")
    write_mnist(gz, n=5)
    blob = open(os.path.join(gz, TRAIN[0] + ".gz"), "rb").read()
    with open(os.path.join(gz, TRAIN[0] + ".gz"), "wb") as f:
        f.write(blob[:-30])
    with pytest.raises(ValueError, match="gzip"):
        MNIST(gz)


# -------------------------------------------------------------------------------------- download


def _mirror(tmp_path, n=5):
    """A directory of .gz files served as file:// URLs, and a subclass downloading from it."""
    src = tmp_path / "mirror"
    write_mnist(src, n=n)
    write_mnist(src, n=3, train=False, seed=2)
    md5 = {name: hashlib.md5(open(src / name, "rb").read()).hexdigest() for name in os.listdir(src)}

    class Local(MNIST):
        mirrors = ["file:///nonexistent/mirror/", src.as_uri() + "/"]
        resources = [
            (name, md5[name])
            for name in (TRAIN[0] + ".gz", TRAIN[1] + ".gz", TEST[0] + ".gz", TEST[1] + ".gz")
        ]

    return Local


def test_download_verifies_checksums(tmp_path):
    Local = _mirror(tmp_path)
    dest = tmp_path / "dest"
    ds = Local(dest, download=True)
    assert len(ds) == 5 and len(Local(dest, train=False)) == 3
    assert sorted(os.listdir(dest)) == sorted(n for n, _ in Local.resources)
    assert all(check_integrity(str(dest / n), md5) for n, md5 in Local.resources)
    Local.mirrors = ["file:///nonexistent/"]  # already there: no download attempted
    assert len(Local(dest, download=True)) == 5


def test_download_checksum_mismatch(tmp_path):
    Local = _mirror(tmp_path)
    Local.resources = [(n, "0" * 32) for n, _ in Local.resources]
    dest = tmp_path / "dest"
    with pytest.raises(RuntimeError) as e:
        Local(dest, download=True)
    msg = str(e.value)
    assert "md5 checksum mismatch" in msg and "expected 00000000" in msg
    assert str(dest / (TRAIN[0] + ".gz")) in msg and "file:///nonexistent/mirror/" in msg
    assert not any(os.scandir(dest))  # nothing half-written left behind


def test_download_url_errors(tmp_path):
    with pytest.raises(RuntimeError, match="could not download .*nothing-here"):
        download_url("file:///nonexistent/nothing-here", str(tmp_path / "x"))
    src = tmp_path / "f.bin"
    src.write_bytes(b"hello")
    sha = hashlib.sha256(b"hello").hexdigest()
    out = download_url([src.as_uri()], str(tmp_path / "out" / "f.bin"), sha256=sha)
    assert open(out, "rb").read() == b"hello"
    with pytest.raises(RuntimeError, match="sha256 checksum mismatch"):
        download_url([src.as_uri()], str(tmp_path / "g.bin"), sha256="ab" * 32)
    assert not os.path.exists(tmp_path / "g.bin")
    assert not check_integrity(str(tmp_path / "nope"))


# -------------------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_binary(tmp_path, nested):
    folder = tmp_path / "cifar-10-batches-bin" if nested else tmp_path
    files = write_cifar(folder)
    train, test = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False)
    assert len(train) == 12 and len(test) == 3
    want = np.concatenate([files[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    want_labels = np.concatenate([files[f"data_batch_{i}.bin"][1] for i in range(1, 6)])
    assert tuple(train.data.shape) == (12, 3, 32, 32)
    np.testing.assert_array_equal(train.data.numpy(), want)
    assert train.targets.tolist() == want_labels.tolist()
    img, label = test[1]
    np.testing.assert_array_equal(img.numpy(), files["test_batch.bin"][0][1])
    assert label == files["test_batch.bin"][1][1]


def test_cifar10_transforms_batch_vs_sample(tmp_path):
    write_cifar(tmp_path)
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
    tf = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )
    ds = CIFAR10(tmp_path, transform=tf)
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=phalanx.Generator(0))
    slow = DataLoader(
        ds, batch_size=5, shuffle=True, generator=phalanx.Generator(0), collate_fn=default_collate
    )
    for (a, la), (b, lb) in zip(loader, slow):
        assert tuple(a.shape)[1:] == (3, 32, 32)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert la.tolist() == lb.tolist()


def test_cifar10_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        CIFAR10(tmp_path / "nowhere")
    write_cifar(tmp_path)
    bad = tmp_path / "data_batch_3.bin"
    bad.write_bytes(bad.read_bytes()[:-7])
    with pytest.raises(ValueError, match=f"{bad}: truncated CIFAR-10 file"):
        CIFAR10(tmp_path)
    write_cifar(tmp_path)
    data = bytearray((tmp_path / "test_batch.bin").read_bytes())
    data[3073] = 77
    (tmp_path / "test_batch.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="test_batch.bin: not a CIFAR-10 file: record 1 has label"):
        CIFAR10(tmp_path, train=False)
    os.remove(tmp_path / "data_batch_5.bin")
    with pytest.raises(FileNotFoundError, match="data_batch_5.bin"):
        CIFAR10(tmp_path)


def test_cifar10_empty_batch_file_is_refused(tmp_path):
    # A 0-byte batch (a failed download or copy) used to load silently as zero images.
    write_cifar(tmp_path)
    empty = tmp_path / "data_batch_2.bin"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{empty}: empty CIFAR-10 file"):
        CIFAR10(tmp_path)
    with pytest.raises(ValueError, match="x.bin: empty CIFAR-10 file"):
        phalanx._C.data.parse_cifar10(b"", "x.bin")


# ------------------------------------------------------------------------------- SyntheticImages


def test_synthetic_images():
    ds = SyntheticImages(10, shape=(3, 8, 8), num_classes=5, seed=1)
    assert len(ds) == 10
    x, y = ds[3]
    assert tuple(x.shape) == (3, 8, 8) and x.dtype == phalanx.float32 and 0 <= y < 5
    x2, y2 = SyntheticImages(10, shape=(3, 8, 8), num_classes=5, seed=1)[3]
    np.testing.assert_array_equal(x.numpy(), x2.numpy())
    assert y == y2
    assert not np.array_equal(SyntheticImages(10, (3, 8, 8), 5, seed=2)[3][0].numpy(), x.numpy())
    xb, yb = ds.get_batch([3, 0])
    np.testing.assert_array_equal(xb.numpy()[0], x.numpy())
    assert yb.tolist()[0] == y
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert [tuple(b[0].shape) for b in batches] == [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
    np.testing.assert_array_equal(batches[0][0].numpy()[3], x.numpy())
    labels = SyntheticImages(200, (1, 1, 1), num_classes=3).get_batch(range(200))[1].numpy()
    assert set(labels.tolist()) == {0, 1, 2}
    with pytest.raises(IndexError, match="index 10 is out of range"):
        ds[10]
    pixels = SyntheticImages(4, (3, 32, 32)).get_batch(range(4))[0].numpy()
    assert abs(float(pixels.std()) - 1) < 0.05


# ------------------------------------------------------------------------------ the real data

_HAVE_REAL = all(
    any(os.path.isfile(os.path.join(DEFAULT_FASHION_MNIST_ROOT, base + ext)) for ext in ("", ".gz"))
    for base in TRAIN + TEST
)


@pytest.mark.skipif(not _HAVE_REAL, reason="apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist():
    train, test = FashionMNIST(), FashionMNIST(train=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.root == DEFAULT_FASHION_MNIST_ROOT
    assert np.bincount(train.targets.numpy()).tolist() == [6000] * 10
    tf = T.Compose([T.ToTensor(), T.Normalize((0.2860,), (0.3530,))])
    test.transform = tf
    loader = DataLoader(test, batch_size=1000, num_workers=2)
    total = 0
    for x, y in loader:
        assert tuple(x.shape) == (1000, 1, 28, 28) and tuple(y.shape) == (1000,)
        total += x.shape[0]
    assert total == 10000
    assert abs(float(x.numpy().mean())) < 0.1
