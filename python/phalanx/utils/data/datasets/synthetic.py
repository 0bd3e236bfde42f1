"""SyntheticImages: a deterministic stand-in dataset for benchmarks, generated on the fly."""

from __future__ import annotations

import numpy as np

import phalanx

from ..dataset import Dataset

__all__ = ["SyntheticImages"]


class SyntheticImages(Dataset):
    """`num_samples` float32 images of `shape` with standard-normal pixels and uniform labels.

    Sample i depends only on (seed, i): the same in every epoch, batch composition and worker.
    Nothing is stored; a batch costs one normal draw per pixel.
    """

    def __init__(
        self, num_samples: int, shape=(3, 224, 224), num_classes: int = 1000, seed: int = 0
    ) -> None:
        if num_samples < 0:
            raise ValueError(f"num_samples must be non-negative, got {num_samples}")
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_samples = int(num_samples)
        self.shape = tuple(int(s) for s in shape)
        self.num_classes = int(num_classes)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.num_samples

    def _check(self, i: int) -> int:
        if i < 0:
            i += self.num_samples
        if not 0 <= i < self.num_samples:
            raise IndexError(
                f"SyntheticImages: index {i} is out of range for {self.num_samples} samples"
            )
        return i

    def _fill(self, i: int, out: np.ndarray) -> int:
        rng = np.random.Generator(np.random.PCG64([self.seed, i]))
        label = int(rng.integers(self.num_classes))
        rng.standard_normal(dtype=np.float32, out=out)
        return label

    def __getitem__(self, index: int):
        image = np.empty(self.shape, np.float32)
        label = self._fill(self._check(index), image)
        return phalanx.from_numpy(image), label

    def get_batch(self, indices):
        idx = [self._check(int(i)) for i in indices]
        images = np.empty((len(idx),) + self.shape, np.float32)
        labels = np.array([self._fill(i, images[k]) for k, i in enumerate(idx)], np.int64)
        return [phalanx.from_numpy(images), phalanx.from_numpy(labels)]
