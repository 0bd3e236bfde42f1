"""DataLoader: batches of a dataset, optionally assembled ahead of time by background threads.

PyTorch's semantics, with threads where PyTorch forks processes (Android kills extra
processes, and has no shared memory to pass batches through). The heavy work of a batch --
file decoding, the uint8 gather, crop/flip/normalize -- runs in C++ without the GIL, so
`num_workers` threads prepare the next batches while the model trains. Batches come out in
sampler order whatever the number of workers, and random transforms draw from a generator
seeded per batch (see _worker.py), so num_workers changes speed, never results.

A loader remembers its position: state_dict() gives the epoch, the batches consumed in it, the
sampler's state for that epoch and the epoch's transform seed; load_state_dict() makes the next
iter() continue with exactly the remaining batches.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable

from ..._timeline import recorder as _timeline
from . import _errors, _worker
from ._pool import DaemonPool
from .collate import default_collate, default_convert
from .dataset import IterableDataset, supports_get_batch
from .sampler import BatchSampler, RandomSampler, SequentialSampler, draw_seed

__all__ = ["DataLoader", "get_worker_info"]

get_worker_info = _worker.get_worker_info


class DataLoader:
    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], Any] | None = None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to "
                "disable prefetch threads."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified with prefetch "
                "threads: set num_workers > 0."
            )
        if prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor < 1:
            raise ValueError(f"prefetch_factor should be a positive integer, got {prefetch_factor}")
        if multiprocessing_context is not None:
            raise ValueError(
                "phalanx's DataLoader prefetches with threads, never processes: "
                "multiprocessing_context is not supported"
            )

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory  # no accelerator memory to pin: accepted for compatibility
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.persistent_workers = persistent_workers
        self.generator = generator
        self._iterable = isinstance(dataset, IterableDataset)

        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle "
                    f"option, but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler "
                    f"option, but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified "
                    f"batch_sampler option, but got batch_sampler={batch_sampler}"
                )
        else:
            shuffle = bool(shuffle)
            if sampler is not None and shuffle:
                raise ValueError("sampler option is mutually exclusive with shuffle")
            if batch_sampler is not None:
                if batch_size != 1 or shuffle or sampler is not None or drop_last:
                    raise ValueError(
                        "batch_sampler option is mutually exclusive with batch_size, "
                        "shuffle, sampler, and drop_last"
                    )
                batch_size = None
                drop_last = False
            elif batch_size is None and drop_last:
                raise ValueError(
                    "batch_size=None option disables auto-batching and is mutually "
                    "exclusive with drop_last"
                )
            if sampler is None:
                sampler = (
                    RandomSampler(dataset, generator=generator)
                    if shuffle
                    else SequentialSampler(dataset)
                )
            if batch_size is not None and batch_sampler is None:
                batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or (
            self._iterable and batch_size is not None
        )
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
            self._batched_fetch = (
                not self._iterable and self._auto_collation and supports_get_batch(dataset)
            )
        else:
            self._batched_fetch = False
        self.collate_fn = collate_fn

        self._epoch = 0  # epochs started
        self._iterator: _LoaderIter | None = None
        self._resume: dict | None = None

    # ------------------------------------------------------------------------------ iteration

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self._iterable:
            return _IterableLoaderIter(self)
        resume, self._resume = self._resume, None
        self._iterator = _LoaderIter(self, resume)
        self._epoch = self._iterator.epoch + 1
        return self._iterator

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError for streams without a length, as in PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)

    def _fetch(self, position: int, base_seed: int, indices):
        """Builds the batch at `position` of the epoch; runs on the main or a prefetch thread.

        On a prefetch thread an exception is re-raised naming the thread and the sample (see
        _errors); on the main thread it propagates as it is, as in PyTorch."""
        doing = f"loading batch {position}"
        try:
            with _worker.batch_seed(_worker.mix_seed(base_seed, position)):
                if not self._auto_collation:
                    doing = f"loading sample index {indices!r}"
                    sample = self.dataset[indices]
                    doing = f"converting sample index {indices!r}"
                    return self.collate_fn(sample)
                if self._batched_fetch:
                    doing = f"loading the batch of sample indices {_brief(indices)}"
                    return self.dataset.get_batch(indices)
                samples = []
                for i in indices:
                    doing = f"loading sample index {i!r}"
                    samples.append(self.dataset[i])
                doing = f"collating the batch of sample indices {_brief(indices)}"
                return self.collate_fn(samples)
        except Exception as e:
            info = _worker.get_worker_info()
            if info is None:
                raise
            raise _errors.in_worker(e, info.id, doing) from None

    # --------------------------------------------------------------------------------- resume

    def state_dict(self) -> dict:
        """The loader's position: enough to continue mid-epoch with the same remaining batches."""
        it = self._iterator
        if it is None or it.exhausted:
            return {"epoch": self._epoch, "batches_consumed": 0, "sampler": None, "base_seed": None}
        sampler_state = it.sampler_state
        fresh = getattr(self._index_sampler, "loader_state_dict", None)
        if callable(fresh):  # a sampler whose state changes during the epoch (balanced shares)
            sampler_state = fresh()
        return {
            "epoch": it.epoch,
            "batches_consumed": it.consumed,
            "sampler": sampler_state,
            "base_seed": it.base_seed,
        }

    def load_state_dict(self, state: dict) -> None:
        """The next iter() resumes at `state` (from state_dict of an identically built loader)."""
        missing = {"epoch", "batches_consumed"} - set(state)
        if missing:
            raise ValueError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}")
        self._iterator = None
        self._epoch = int(state["epoch"])
        self._resume = dict(state)


class _LoaderIter:
    """One epoch over a map-style dataset."""

    def __init__(self, loader: DataLoader, resume: dict | None) -> None:
        self._loader = loader
        self.epoch = loader._epoch
        self.consumed = 0
        self.exhausted = False
        index_sampler = loader._index_sampler
        skip = 0
        if resume is not None:
            self.epoch = int(resume["epoch"])
            skip = int(resume["batches_consumed"])
            if resume.get("sampler") is not None and hasattr(index_sampler, "load_state_dict"):
                index_sampler.load_state_dict(resume["sampler"])
        seed = resume.get("base_seed") if resume is not None else None
        self.base_seed = draw_seed(loader.generator) if seed is None else int(seed)
        self._indices = iter(index_sampler)  # draws the epoch's order now
        state_fn = getattr(index_sampler, "state_dict", None)
        self.sampler_state = state_fn() if callable(state_fn) else None
        self._length = len(index_sampler) if hasattr(index_sampler, "__len__") else None
        for _ in itertools.islice(self._indices, skip):  # indices only: skipping costs nothing
            self.consumed += 1
        self._position = self.consumed  # next batch to schedule
        self._pool: DaemonPool | None = None
        self._pending: deque[Future] = deque()
        if loader.num_workers > 0:
            self._pool = _make_pool(loader, self.base_seed)
            for _ in range(loader.num_workers * loader.prefetch_factor):
                if not self._schedule():
                    break

    def __iter__(self):
        return self

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("the sampler has no length")
        return self._length

    def _schedule(self) -> bool:
        indices = next(self._indices, None)
        if indices is None:
            return False
        future = self._pool.submit(self._loader._fetch, self._position, self.base_seed, indices)
        self._pending.append(future)
        self._position += 1
        return True

    @_timeline.traced("data loading", "data")
    def __next__(self):
        if self.exhausted:
            raise StopIteration
        try:
            if self._pool is None:
                indices = next(self._indices, None)
                if indices is None:
                    raise StopIteration
                batch = self._loader._fetch(self._position, self.base_seed, indices)
                self._position += 1
            else:
                if not self._pending:
                    raise StopIteration
                future = self._pending.popleft()
                timeout = self._loader.timeout or None
                try:
                    batch = future.result(timeout=timeout)
                except TimeoutError:
                    raise RuntimeError(
                        f"DataLoader timed out after {self._loader.timeout} seconds "
                        "waiting for a batch from its prefetch threads"
                    ) from None
                self._schedule()
        except BaseException:
            self._shutdown()
            raise
        self.consumed += 1
        return batch

    def _shutdown(self) -> None:
        self.exhausted = True
        if self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pending.clear()
            self._pool.shutdown()
            self._pool = None

    def __del__(self) -> None:
        try:
            self._shutdown()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _brief(indices) -> str:
    """The indices of a batch for an error message, elided past a dozen."""
    indices = list(indices)
    if len(indices) <= 12:
        return repr(indices)
    return repr(indices[:12])[:-1] + f", ... ({len(indices)} in all)]"


def _make_pool(loader: DataLoader, base_seed: int) -> DaemonPool:
    base = _worker.mix_seed(base_seed, -1)  # WorkerInfo.seed: distinct from the batch seeds

    def init(wid: int) -> None:
        info = _worker.WorkerInfo(
            wid, loader.num_workers, _worker.mix_seed(base, wid), loader.dataset
        )
        _worker._set_worker_info(info)
        if loader.worker_init_fn is not None:
            try:
                loader.worker_init_fn(wid)
            except Exception as e:  # every batch this thread takes fails with it
                raise _errors.in_worker(e, wid, "running worker_init_fn") from None

    return DaemonPool(loader.num_workers, "phalanx-data", init)


_END = object()


class _IterableLoaderIter:
    """One pass over an IterableDataset; with workers, one background thread runs ahead."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._seed = draw_seed(loader.generator)
        self._batches = self._produce()
        self._finished = False  # the end or an error was handed out: next() stops from now on
        self._queue: queue.Queue | None = None
        if loader.num_workers > 0:
            self._queue = queue.Queue(maxsize=loader.num_workers * loader.prefetch_factor)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="phalanx-data-0", daemon=True)
            self._thread.start()

    def _produce(self):
        loader = self._loader
        it = iter(loader.dataset)
        for position in itertools.count():
            with _worker.batch_seed(_worker.mix_seed(self._seed, position)):
                if loader.batch_size is None:
                    try:
                        sample = next(it)
                    except StopIteration:
                        return
                    yield loader.collate_fn(sample)
                    continue
                samples = list(itertools.islice(it, loader.batch_size))
                if not samples or (loader.drop_last and len(samples) < loader.batch_size):
                    return
                yield loader.collate_fn(samples)

    def _run(self) -> None:
        _worker._set_worker_info(_worker.WorkerInfo(0, 1, self._seed, self._loader.dataset))
        position = 0  # of the batch being produced, for the error message
        try:
            for batch in self._batches:
                if not self._put((True, batch)):
                    return
                position += 1
            self._put((True, _END))
        except Exception as e:
            self._put((False, _errors.in_worker(e, 0, f"loading batch {position}")))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._put((False, e))

    def _put(self, item) -> bool:
        """Queues `item` unless the consumer has gone (False then): never blocks for good."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    @_timeline.traced("data loading", "data")
    def __next__(self):
        if self._queue is None:
            return next(self._batches)
        if self._finished:  # the thread has stopped: nothing will ever arrive
            raise StopIteration
        try:
            ok, item = self._queue.get(timeout=self._loader.timeout or None)
        except queue.Empty:
            self._finish()
            raise RuntimeError(
                f"DataLoader timed out after {self._loader.timeout} seconds "
                "waiting for a batch from its prefetch thread"
            ) from None
        if not ok:
            self._finish()
            raise item
        if item is _END:
            self._finish()
            raise StopIteration
        return item

    def _finish(self) -> None:
        self._finished = True
        self._stop.set()

    def __del__(self) -> None:
        if self._queue is not None:
            self._stop.set()
