"""Samplers: the order in which a DataLoader visits a map-style dataset.

Resumable samplers define ``state_dict()`` / ``load_state_dict()``: the state describes the
order of the epoch most recently started with ``iter()``, and after ``load_state_dict`` the next
``iter()`` produces that same order again, so a checkpointed run continues mid-epoch exactly.
``iter()`` draws the whole order eagerly so its state is known from the start of the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import phalanx

__all__ = [
    "BatchSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "draw_seed",
]


def draw_seed(generator=None) -> int:
    """A fresh 63-bit seed from `generator` (default: the global phalanx generator)."""
    return int(phalanx.randint(0, 2**62, (1,), generator=generator).item())


class Sampler:
    """Base class: iterating yields dataset indices (or, for batch samplers, lists of them)."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self) -> Iterator:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation each epoch (or `num_samples` draws with replacement).

    With a `generator`, successive epochs continue its stream; without one, each epoch draws a
    seed from the global phalanx generator, so phalanx.manual_seed makes the order reproducible.
    """

    def __init__(
        self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None
    ) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        self._epoch_state: bytes | None = None
        self._resume_state: bytes | None = None
        if not isinstance(replacement, bool):
            raise TypeError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                "num_samples should be a positive integer value, but got "
                f"num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __len__(self) -> int:
        return self.num_samples

    def _epoch_generator(self):
        gen = self.generator
        if self._resume_state is not None:
            if gen is None:
                gen = phalanx.Generator()
            gen.set_state(self._resume_state)
            self._resume_state = None
        elif gen is None:
            gen = phalanx.Generator(draw_seed())
        self._epoch_state = gen.get_state()
        return gen

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        gen = self._epoch_generator()
        if self.replacement:
            order = phalanx.randint(0, n, (self.num_samples,), generator=gen).tolist()
        else:
            order = []
            for _ in range(self.num_samples // n):
                order += phalanx.randperm(n, generator=gen).tolist()
            order += phalanx.randperm(n, generator=gen).tolist()[: self.num_samples % n]
        return iter(order)

    def state_dict(self) -> dict:
        return {"generator_state": self._epoch_state}

    def load_state_dict(self, state: dict) -> None:
        self._resume_state = state.get("generator_state")


class SubsetRandomSampler(Sampler):
    """The given indices in a random order each epoch."""

    def __init__(self, indices: Sequence[int], generator=None) -> None:
        self.indices = indices
        self._perm = RandomSampler(range(len(indices)), generator=generator)

    @property
    def generator(self):
        return self._perm.generator

    def __iter__(self) -> Iterator[int]:
        return iter([self.indices[i] for i in self._perm])

    def __len__(self) -> int:
        return len(self.indices)

    def state_dict(self) -> dict:
        return self._perm.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._perm.load_state_dict(state)


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size`; the last may be short
    unless `drop_last`."""

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        return self._batches(iter(self.sampler))  # iter() now: the epoch's order is drawn here

    def _batches(self, it: Iterator[int]) -> Iterator[list[int]]:
        batch: list[int] = []
        for i in it:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict | None:
        fn = getattr(self.sampler, "state_dict", None)
        return fn() if callable(fn) else None

    def load_state_dict(self, state) -> None:
        fn = getattr(self.sampler, "load_state_dict", None)
        if callable(fn) and state is not None:
            fn(state)
