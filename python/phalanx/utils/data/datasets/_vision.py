"""The common shape of the image datasets: a uint8 image array in memory, int64 labels, a
per-sample path through `transform`, and a batched path through the C++ BatchTransform."""

from __future__ import annotations

import os

import numpy as np

import phalanx

from .._paths import fs_path
from ..dataset import Dataset
from ..transforms import BatchTransform

_NO_BATCH = object()


class VisionDataset(Dataset):
    """Subclasses call _set_arrays(images uint8 [N, H, W] or [N, C, H, W], labels [N]).

    Samples are (image, label): the image a uint8 tensor view [H, W] or [C, H, W] passed
    through `transform`, the label an int passed through `target_transform`.
    """

    def __init__(self, root, transform=None, target_transform=None) -> None:
        self.root = (
            None
            if root is None
            else os.path.expanduser(fs_path(root, f"{type(self).__name__} root"))
        )
        self.transform = transform
        self.target_transform = target_transform
        self._batch_cache = (None, None)

    def _set_arrays(self, images: np.ndarray, labels: np.ndarray) -> None:
        self._images = np.ascontiguousarray(images, dtype=np.uint8)
        self._labels = np.ascontiguousarray(labels, dtype=np.int64)
        self.data = phalanx.from_numpy(self._images)  # torchvision's attribute names; shared memory
        self.targets = phalanx.from_numpy(self._labels)

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def _batch_transform(self):
        """The transform as a BatchTransform (None without a transform, _NO_BATCH if impossible)."""
        key, value = self._batch_cache
        if key is not self.transform:
            if self.transform is None:
                value = None
            else:
                bt = BatchTransform.from_transform(self.transform)
                value = _NO_BATCH if bt is None else bt
            self._batch_cache = (self.transform, value)
        return value

    def __getitem__(self, index: int):
        img = phalanx.from_numpy(self._images[index])
        target = int(self._labels[index])
        if isinstance(self.transform, BatchTransform):
            n = len(self)
            i = index + n if index < 0 else index
            img = self.transform(self.data, [i])[0]
        elif self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    @property
    def supports_get_batch(self) -> bool:
        return self.target_transform is None and self._batch_transform() is not _NO_BATCH

    def get_batch(self, indices):
        """What default_collate of the samples at `indices` gives: [images, labels], built with
        one gather (and one C++ transform call) for the whole batch."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        labels = phalanx.from_numpy(self._labels[idx])
        bt = self._batch_transform()
        if bt is _NO_BATCH:
            raise TypeError(
                f"{type(self).__name__}.get_batch: transform {self.transform!r} has "
                "no batch equivalent; index sample by sample"
            )
        if bt is None:
            return [phalanx.from_numpy(self._images[idx]), labels]
        return [bt(self.data, phalanx.from_numpy(idx)), labels]

    def __repr__(self) -> str:
        lines = [
            f"Dataset {type(self).__name__}",
            f"    Number of datapoints: {len(self)}",
            f"    Root location: {self.root}",
        ]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)
