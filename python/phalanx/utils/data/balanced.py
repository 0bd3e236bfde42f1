"""BalancedDistributedSampler: one global batch per step, split between ranks by integer shares.

Ranks of different speeds (phones of different models, or one that has heated up) should not
get equal batches: the slowest rank would set the pace. This batch sampler gives rank r
``shares[r]`` samples of each global batch, and the shares can change at any step (the
balancer of DistributedDataParallel(balance=...) changes them from measured speeds).

Why exactness survives share changes: every rank draws the same permutation of the dataset
per epoch (Generator(seed + epoch), like DistributedSampler), global step k of the epoch
always covers positions [k * G, (k + 1) * G) of it, and only the cut points inside that
window depend on the shares. So within an epoch no sample is seen twice or skipped, whatever
the shares do, provided every rank uses the same shares for the same step. Share changes are
therefore scheduled by step number (``set_shares(shares, at_step=k)``), counted in batches
drawn since construction, not applied "now": a DataLoader with prefetch threads draws
batches ahead, and a scheduled change still hits every rank at the same step.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

import phalanx

from .distributed import _default_group_value
from .sampler import Sampler

__all__ = ["BalancedDistributedSampler", "equal_shares", "check_shares"]


def equal_shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` integers differing by at most one (the larger first)."""
    base, extra = divmod(total, parts)
    return [base + 1 if r < extra else base for r in range(parts)]


def check_shares(shares, global_batch_size: int, num_replicas: int) -> list[int]:
    """`shares` as a list of ints, or ValueError/TypeError saying what is wrong with it."""
    if isinstance(shares, (str, bytes)) or not isinstance(shares, Sequence):
        raise TypeError(
            f"shares must be a list of {num_replicas} ints (one per rank), got "
            f"{type(shares).__name__} {shares!r}"
        )
    out = []
    for r, s in enumerate(shares):
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"shares[{r}] must be an int, got {type(s).__name__} {s!r}")
        out.append(int(s))
    if len(out) != num_replicas:
        raise ValueError(
            f"shares must have one entry per rank ({num_replicas}), got {len(out)}: {out}"
        )
    bad = [r for r, s in enumerate(out) if s < 1]
    if bad:
        raise ValueError(
            f"every share must be at least 1 sample, got shares={out} (rank(s) {bad}); a rank "
            "without samples would still have to take part in every step"
        )
    if sum(out) != global_batch_size:
        raise ValueError(
            f"shares must sum to global_batch_size={global_batch_size}, got shares={out} "
            f"(sum {sum(out)})"
        )
    return out


def _split_short(count: int, shares: list[int]) -> list[int]:
    """A last, short global batch of `count` samples split in proportion to `shares`
    (largest remainders; a rank may get none when count is tiny)."""
    total = sum(shares)
    exact = [count * s / total for s in shares]
    parts = [int(e) for e in exact]
    order = sorted(range(len(shares)), key=lambda r: (parts[r] - exact[r], r))
    for r in order[: count - sum(parts)]:
        parts[r] += 1
    return parts


class BalancedDistributedSampler(Sampler):
    """A batch sampler: iterating yields this rank's list of indices for each global step.

    Use it as ``DataLoader(dataset, batch_sampler=sampler)``. Every rank must build it with
    the same dataset length, global_batch_size, shuffle, seed and epoch.

    Args:
        dataset: a map-style dataset (only its length is used).
        global_batch_size: samples per step over all ranks (sum of the shares).
        shuffle: a new permutation per epoch (Generator(seed + epoch)); else dataset order.
        seed: base seed of the permutation; the same on every rank.
        drop_last: drop the epoch's last, short global batch (default); else it is split in
            proportion to the shares.
        num_replicas, rank: default to the default process group's.
        shares: the initial shares (default: equal, differing by at most one).
    """

    def __init__(
        self,
        dataset,
        global_batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
        shares: Sequence[int] | None = None,
    ) -> None:
        if num_replicas is None:
            num_replicas = _default_group_value("num_replicas")
        if rank is None:
            rank = _default_group_value("rank")
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas should be a positive integer, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(
                f"Invalid rank {rank!r}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        if isinstance(global_batch_size, bool) or not isinstance(global_batch_size, int):
            raise TypeError(
                f"global_batch_size must be an int, got {type(global_batch_size).__name__} "
                f"{global_batch_size!r}"
            )
        if global_batch_size < num_replicas:
            raise ValueError(
                f"global_batch_size={global_batch_size} is smaller than the number of ranks "
                f"({num_replicas}): every rank needs at least one sample per step"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.dataset = dataset
        self.global_batch_size = global_batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        initial = (
            equal_shares(global_batch_size, num_replicas)
            if shares is None
            else check_shares(shares, global_batch_size, num_replicas)
        )
        # Share changes as (first step, shares), sorted; steps count batches drawn since
        # construction, across epochs, so a change keeps its meaning across an epoch boundary.
        self._changes: list[tuple[int, list[int]]] = [(0, initial)]
        self._drawn = 0  # batches drawn since construction (the step number of the next one)
        self._epoch_base = 0  # the step number of this epoch's first batch
        self._position = 0  # batches of this epoch drawn so far
        self._iter_start = 0  # the epoch position at which the latest iter() began
        self._iter_step = 0  # and its step number
        self._resume: int | None = None  # position where the next iter() begins

    # ---------------------------------------------------------------------------- shares

    @property
    def shares(self) -> list[int]:
        """The shares of the next batch to be drawn."""
        return list(self.shares_at(self._drawn))

    def shares_at(self, step: int) -> list[int]:
        """The shares in force at `step` (batches drawn since construction)."""
        i = bisect.bisect_right([s for s, _ in self._changes], step) - 1
        return list(self._changes[max(i, 0)][1])

    @property
    def steps_drawn(self) -> int:
        """Batches drawn since construction: the step number of the next batch."""
        return self._drawn

    def set_shares(self, shares: Sequence[int], at_step: int | None = None) -> None:
        """Uses `shares` from step `at_step` on (default: the next batch drawn). Every rank
        must make the same call with the same `at_step`; a step already drawn cannot change."""
        shares = check_shares(shares, self.global_batch_size, self.num_replicas)
        step = self._drawn if at_step is None else int(at_step)
        if step < self._drawn:
            raise RuntimeError(
                f"set_shares(at_step={step}): this rank has already drawn the batch of step "
                f"{self._drawn - 1}; shares can only change for steps not drawn yet (a loader "
                "drawing ahead needs at_step past its prefetched batches)"
            )
        self._changes = [c for c in self._changes if c[0] < step] + [(step, shares)]
        self._trim()

    def _trim(self) -> None:
        """Forgets changes superseded before the latest iter() began (keeps state small)."""
        keep = bisect.bisect_right([s for s, _ in self._changes], self._iter_step) - 1
        if keep > 0:
            self._changes = self._changes[keep:]

    # ------------------------------------------------------------------------- iteration

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch of the next iteration: with shuffle, each epoch has its own order."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.dataset)
        g = self.global_batch_size
        return n // g if self.drop_last else -(-n // g)

    def _order(self) -> list[int]:
        n = len(self.dataset)
        if self.shuffle:
            return phalanx.randperm(n, generator=phalanx.Generator(self.seed + self.epoch)).tolist()
        return list(range(n))

    def __iter__(self) -> Iterator[list[int]]:
        start = 0 if self._resume is None else self._resume
        self._resume = None
        self._epoch_base = self._drawn - start
        self._position = self._iter_start = start
        self._iter_step = self._drawn
        self._trim()
        return self._batches(self._order(), start)

    def _batches(self, order: list[int], start: int) -> Iterator[list[int]]:
        g = self.global_batch_size
        for position in range(start, len(self)):
            window = order[position * g : (position + 1) * g]
            shares = self.shares_at(self._drawn)
            if len(window) < g:
                shares = _split_short(len(window), shares)
            begin = sum(shares[: self.rank])
            self._drawn += 1
            self._position = position + 1
            yield window[begin : begin + shares[self.rank]]
        # The epoch is complete: the next iter() starts the next one at its beginning.
        self._epoch_base = self._drawn
        self._position = 0

    # ---------------------------------------------------------------------------- resume

    def _state(self, position: int, step: int) -> dict:
        return {
            "epoch": self.epoch,
            "seed": self.seed,
            "global_batch_size": self.global_batch_size,
            "num_replicas": self.num_replicas,
            "position": position,
            "step": step,
            "changes": [[s, list(sh)] for s, sh in self._changes],
        }

    def state_dict(self) -> dict:
        """The position (epoch, batches of it drawn) and the shares, present and scheduled.
        After load_state_dict the next iter() continues with the next batch exactly."""
        return self._state(self._position, self._epoch_base + self._position)

    def loader_state_dict(self) -> dict:
        """The state for DataLoader.state_dict(), which asks at save time rather than at
        iter(): positioned where the latest iter() began (the loader skips the batches it
        consumed), with every share change made since (the schedule grows during an epoch)."""
        return self._state(self._iter_start, self._iter_step)

    def load_state_dict(self, state: dict) -> None:
        missing = {"epoch", "position", "step", "changes"} - set(state)
        if missing:
            raise ValueError(
                f"BalancedDistributedSampler.load_state_dict: missing keys {sorted(missing)}"
            )
        for key, mine in (
            ("global_batch_size", self.global_batch_size),
            ("num_replicas", self.num_replicas),
        ):
            if key in state and int(state[key]) != mine:
                raise ValueError(
                    f"BalancedDistributedSampler.load_state_dict: the state has {key}="
                    f"{state[key]}, this sampler {mine}"
                )
        changes = [
            (int(s), check_shares(list(sh), self.global_batch_size, self.num_replicas))
            for s, sh in state["changes"]
        ]
        if not changes:
            raise ValueError("BalancedDistributedSampler.load_state_dict: 'changes' is empty")
        self.epoch = int(state["epoch"])
        if "seed" in state:
            self.seed = int(state["seed"])
        position = int(state["position"])
        self._changes = changes
        self._drawn = int(state["step"])
        self._epoch_base = self._drawn - position
        self._position = self._iter_start = position
        self._iter_step = self._drawn
        self._resume = position
