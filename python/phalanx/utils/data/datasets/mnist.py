"""MNIST and Fashion-MNIST from their IDX files (gzip-compressed or plain).

The files may sit directly in `root` (the Debian package's layout) or in
root/<ClassName>/raw (torchvision's). Fashion-MNIST's default root is where the Debian package
`dataset-fashion-mnist` installs it; with download=True missing files are fetched from the
official mirrors into root (default: ~/.cache/phalanx/datasets/<ClassName>) and checked
against their MD5 sums.
"""

from __future__ import annotations

import os

import numpy as np

from .._paths import fs_path
from ..idx import DEFAULT_FASHION_MNIST_ROOT, IMAGES_MAGIC, LABELS_MAGIC, read_idx
from ._download import download_url
from ._vision import VisionDataset

__all__ = ["MNIST", "FashionMNIST", "default_cache_dir"]


def default_cache_dir() -> str:
    """Where downloads go when no root is given: $PHALANX_DATA or ~/.cache/phalanx/datasets."""
    home_cache = os.path.join(os.path.expanduser("~"), ".cache", "phalanx", "datasets")
    return os.environ.get("PHALANX_DATA") or home_cache


class MNIST(VisionDataset):
    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]
    system_roots: list[str] = []  # directories a system package installs the files to
    install_hint = "pass download=True to fetch it, or the directory holding the IDX files"
    side = 28

    def __init__(
        self,
        root=None,
        train: bool = True,
        transform=None,
        target_transform=None,
        download: bool = False,
    ) -> None:
        super().__init__(self._pick_root(root), transform, target_transform)
        self.train = train
        if download and self._locate() is None:
            self.download()
        paths = self._locate()
        if paths is None:
            raise FileNotFoundError(self._missing_message())
        images = read_idx(paths[0], IMAGES_MAGIC)
        labels = read_idx(paths[1], LABELS_MAGIC)
        if images.shape[1:] != (self.side, self.side):
            raise ValueError(
                f"{paths[0]}: expected images of {self.side}x{self.side}, got "
                f"{images.shape[1]}x{images.shape[2]}"
            )
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{type(self).__name__} count mismatch: {paths[0]} has "
                f"{images.shape[0]} images but {paths[1]} has {labels.shape[0]} "
                "labels"
            )
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(
                f"{paths[1]}: label {int(labels.max())} out of range: expected "
                f"classes 0-{len(self.classes) - 1}"
            )
        self._set_arrays(images, labels.astype(np.int64))

    # ------------------------------------------------------------------------------- files

    @classmethod
    def _bases(cls, train: bool) -> tuple[str, str]:
        prefix = "train" if train else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def _pick_root(self, root) -> str:
        if root is not None:
            return os.path.expanduser(fs_path(root, f"{type(self).__name__} root"))
        for r in self.system_roots:
            if os.path.isdir(r):
                return r
        return os.path.join(default_cache_dir(), type(self).__name__)

    def _dirs(self) -> list[str]:
        return [self.root, os.path.join(self.root, type(self).__name__, "raw")]

    def _candidates(self, base: str) -> list[str]:
        return [os.path.join(d, base + ext) for d in self._dirs() for ext in (".gz", "")]

    def _locate(self) -> tuple[str, str] | None:
        found = []
        for base in self._bases(self.train):
            path = next((c for c in self._candidates(base) if os.path.isfile(c)), None)
            if path is None:
                return None
            found.append(path)
        return found[0], found[1]

    def _missing_message(self) -> str:
        if not os.path.isdir(self.root):
            return f"{type(self).__name__} directory not found: {self.root}; {self.install_hint}"
        missing = [
            c
            for base in self._bases(self.train)
            if not any(os.path.isfile(p) for p in self._candidates(base))
            for c in self._candidates(base)[:2]
        ]
        return (
            f"{type(self).__name__} file not found: looked for {' and '.join(missing)}; "
            f"{self.install_hint}"
        )

    def download(self) -> None:
        """Fetches the four .gz files into root (those not there already), verifying MD5 sums."""
        for name, md5 in self.resources:
            base = name[: -len(".gz")]
            if any(os.path.isfile(p) for p in self._candidates(base)):
                continue
            download_url([m + name for m in self.mirrors], os.path.join(self.root, name), md5=md5)


class FashionMNIST(MNIST):
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    system_roots = [DEFAULT_FASHION_MNIST_ROOT]
    install_hint = (
        "install it with `apt-get install dataset-fashion-mnist`, pass download=True, "
        "or pass the directory holding the IDX files"
    )
