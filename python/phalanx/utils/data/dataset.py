"""Datasets: the map-style and iterable base classes and PyTorch's composites.

A map-style dataset may also define ``get_batch(indices)``, returning exactly what
``default_collate([self[i] for i in indices])`` would. The DataLoader then calls it once per
batch instead of indexing sample by sample (when it uses the default collate): the vision
datasets gather and transform a whole uint8 batch in one C++ call this way.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

import phalanx

__all__ = [
    "ConcatDataset",
    "Dataset",
    "IterableDataset",
    "Subset",
    "TensorDataset",
    "random_split",
    "supports_get_batch",
]


class Dataset:
    """A map from indices 0..len-1 to samples: subclasses define __getitem__ and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: subclasses define __iter__ (a DataLoader then takes no sampler)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


def supports_get_batch(dataset) -> bool:
    """Whether `dataset` offers the batched ``get_batch(indices)`` path."""
    flag = getattr(dataset, "supports_get_batch", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(dataset, "get_batch", None))


def _size0(t) -> int:
    return int(t.shape[0]) if hasattr(t, "shape") else len(t)


class TensorDataset(Dataset):
    """Samples are slices along the first dimension of each tensor (or numpy array)."""

    def __init__(self, *tensors) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [_size0(t) for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ValueError(f"Size mismatch between tensors: first dimensions are {sizes}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _size0(self.tensors[0])

    @property
    def supports_get_batch(self) -> bool:
        return all(isinstance(t, phalanx.Tensor) for t in self.tensors)

    def get_batch(self, indices):
        idx = phalanx.tensor(np.asarray(indices, dtype=np.int64))
        return [t.index_select(0, idx) for t in self.tensors]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def supports_get_batch(self) -> bool:
        return supports_get_batch(self.dataset)

    def get_batch(self, indices):
        return self.dataset.get_batch([self.indices[i] for i in indices])


class ConcatDataset(Dataset):
    """The concatenation of several map-style datasets."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int):
        if idx < 0:
            if -idx > len(self):
                raise IndexError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][idx - start]


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Splits `dataset` into non-overlapping Subsets of the given lengths (or fractions)."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # the remainder goes round-robin, as torch does
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = phalanx.randperm(n, generator=generator).tolist()
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, order[offset : offset + length]))
        offset += length
    return out
