"""Readers for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or plain.

An IDX file is a big-endian header followed by the raw array:

    bytes 0-1   zero
    byte  2     element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64)
    byte  3     number of dimensions
    then        one big-endian uint32 per dimension, then the data, row-major.

Read as a big-endian uint32 the first four bytes are the "magic number": 2051 (0x803) for
an images file of uint8 [N, rows, cols], 2049 (0x801) for a labels file of uint8 [N].

Decompression happens here; the parsing and validation in C++. Every problem is raised as a
Python exception naming the file.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ... import _C
from ._paths import fs_path

__all__ = [
    "DEFAULT_FASHION_MNIST_ROOT",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "load_fashion_mnist",
    "read_idx",
]

#: Where the Debian package `dataset-fashion-mnist` installs the four files.
DEFAULT_FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

IMAGES_MAGIC = 0x00000803  # 2051: uint8, 3 dimensions
LABELS_MAGIC = 0x00000801  # 2049: uint8, 1 dimension

_INSTALL_HINT = "install it with `apt-get install dataset-fashion-mnist`"

_GZIP_SIGNATURE = b"\x1f\x8b"

_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_NUM_CLASSES = 10


def _read_bytes(path: str) -> bytes:
    """The file's content, decompressed if it is gzip (detected by its signature, not name)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"expected an IDX file, got a directory: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_SIGNATURE):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as e:
        raise ValueError(f"{path}: truncated gzip stream ({len(raw)} compressed bytes): {e}") from e
    except (OSError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt gzip data: {e}") from e


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Reads one IDX file (gzip or plain) into a writable numpy array of native byte order.

    ``expected_magic``, if given, is the required 32-bit magic number (e.g. 2051 for images,
    2049 for labels); otherwise any valid IDX type and rank is accepted. The header checks and
    the decoding run in C++ (csrc/io/dataset_readers.cc); errors are ValueErrors naming the file.
    """
    path = fs_path(path, "read_idx path")
    return _C.data.read_idx(_read_bytes(path), path, expected_magic)


def _find(root: str, base: str) -> str:
    """The path of `base` in root, gzip-compressed (`base.gz`) or plain."""
    candidates = [os.path.join(root, base + ".gz"), os.path.join(root, base)]
    for c in candidates:
        if os.path.isfile(c):
            return c
    raise FileNotFoundError(
        f"Fashion-MNIST file not found: looked for {' and '.join(candidates)}; "
        f"{_INSTALL_HINT}, or pass the directory holding the IDX files"
    )


def load_fashion_mnist(
    root: str | os.PathLike | None = None, train: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST training (60000) or test (10000) set from the IDX files in `root`.

    Returns (images uint8 [N, 28, 28], labels int64 [N]). `root` defaults to where the Debian
    package `dataset-fashion-mnist` installs them, /usr/share/datasets/fashion-mnist.
    Also reads MNIST, whose files have the same names and layout.
    """
    root = DEFAULT_FASHION_MNIST_ROOT if root is None else fs_path(root, "root")
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"Fashion-MNIST directory not found: {root}; {_INSTALL_HINT}, or pass the "
            "directory holding the IDX files"
        )
    images_base, labels_base = _FILES[bool(train)]
    images_path = _find(root, images_base)
    labels_path = _find(root, labels_base)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected images of 28x28, got {images.shape[1]}x{images.shape[2]}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Fashion-MNIST count mismatch: {images_path} has {images.shape[0]} images but "
            f"{labels_path} has {labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= _NUM_CLASSES:
        raise ValueError(
            f"{labels_path}: label {int(labels.max())} out of range: expected classes 0-"
            f"{_NUM_CLASSES - 1}"
        )
    return images, labels.astype(np.int64)
