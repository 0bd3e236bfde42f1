"""phalanx.utils.data: collate, samplers, DistributedSampler (vs torch), the DataLoader with and
without prefetch threads, and resuming mid-epoch from state_dict."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
import time

import numpy as np
import pytest
from _spawn import PYTHON, python_env, scaled

import phalanx
from phalanx import _C
from phalanx.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)
from phalanx.utils.data import transforms as T


class Range(Dataset):
    """Sample i is i; records which threads fetched samples."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.threads: set[str] = set()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        self.threads.add(threading.current_thread().name)
        return i


def flat(batches) -> list[int]:
    return [int(v) for b in batches for v in b.tolist()]


def as_lists(batches):
    out = []
    for b in batches:
        if isinstance(b, (list, tuple)):
            out.append([np.asarray(x.numpy()).tolist() for x in b])
        else:
            out.append(np.asarray(b.numpy()).tolist())
    return out


# ------------------------------------------------------------------------------------ datasets


def test_tensor_dataset_and_batches():
    x = phalanx.tensor(np.arange(30, dtype=np.float32).reshape(10, 3))
    y = phalanx.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[4]
    assert xi.tolist() == [12.0, 13.0, 14.0] and int(yi) == 4
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [tuple(b[0].shape) for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert [tuple(b[1].shape) for b in batches] == [(4,), (4,), (2,)]
    assert batches[0][0].dtype == phalanx.float32 and batches[0][1].dtype == phalanx.int64
    assert flat(b[1] for b in batches) == list(range(10))
    # The batched fast path and sample-by-sample collation agree.
    slow = list(DataLoader(ds, batch_size=4, collate_fn=default_collate))
    assert as_lists(batches) == as_lists(slow)


def test_tensor_dataset_size_mismatch():
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(phalanx.zeros(3, 2), phalanx.zeros(4))


def test_drop_last_and_len():
    ds = Range(10)
    assert len(DataLoader(ds, batch_size=3)) == 4
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 3
    batches = list(DataLoader(ds, batch_size=3, drop_last=True))
    assert [b.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(ds, batch_size=None)) == 10


def test_iteration_restarts_each_epoch():
    loader = DataLoader(Range(7), batch_size=2)
    for _ in range(3):
        assert flat(loader) == list(range(7))


def test_subset_concat_random_split():
    ds = Range(10)
    sub = Subset(ds, [9, 3, 5])
    assert len(sub) == 3 and sub[0] == 9
    assert flat(DataLoader(sub, batch_size=2)) == [9, 3, 5]
    cat = ConcatDataset([Range(3), Range(2)])
    assert len(cat) == 5 and [cat[i] for i in range(5)] == [0, 1, 2, 0, 1] and cat[-1] == 1
    a, b = random_split(ds, [7, 3], generator=phalanx.Generator(1))
    assert sorted(list(a.indices) + list(b.indices)) == list(range(10)) and len(a) == 7
    a2, _ = random_split(ds, [7, 3], generator=phalanx.Generator(1))
    assert list(a.indices) == list(a2.indices)
    parts = random_split(ds, [0.5, 0.5], generator=phalanx.Generator(0))
    assert [len(p) for p in parts] == [5, 5]
    with pytest.raises(ValueError):
        random_split(ds, [3, 3])


def test_subset_of_tensor_dataset_uses_batches():
    ds = TensorDataset(phalanx.arange(10) * 10)
    sub = Subset(ds, [2, 4, 6, 8])
    out = list(DataLoader(sub, batch_size=3))
    assert [b[0].tolist() for b in out] == [[20, 40, 60], [80]]


# ------------------------------------------------------------------------------------- collate

Point = collections.namedtuple("Point", "x y")


def test_default_collate_types():
    b = default_collate([1, 2, 3])
    assert b.dtype == phalanx.int64 and b.tolist() == [1, 2, 3]
    b = default_collate([0.5, 1.5])
    assert b.dtype == phalanx.float32 and b.tolist() == [0.5, 1.5]
    assert default_collate([True, False]).dtype == phalanx.bool
    assert default_collate(["a", "b"]) == ["a", "b"]
    arr = default_collate([np.zeros((2, 3), np.uint8), np.ones((2, 3), np.uint8)])
    assert arr.dtype == phalanx.uint8 and tuple(arr.shape) == (2, 2, 3)
    f64 = default_collate([np.zeros(2), np.ones(2)])
    assert f64.dtype == phalanx.float32
    t = default_collate([phalanx.ones(2, 2), phalanx.zeros(2, 2)])
    assert tuple(t.shape) == (2, 2, 2) and t.numpy()[0].sum() == 4


def test_default_collate_structures():
    samples = [{"img": np.full((2,), i, np.float32), "label": i, "name": f"s{i}"} for i in range(3)]
    b = default_collate(samples)
    assert set(b) == {"img", "label", "name"}
    assert tuple(b["img"].shape) == (3, 2) and b["label"].tolist() == [0, 1, 2]
    assert b["name"] == ["s0", "s1", "s2"]
    tup = default_collate([(1, 2.0), (3, 4.0)])
    assert isinstance(tup, list) and tup[0].tolist() == [1, 3]  # tuples give lists, as in torch
    nt = default_collate([Point(1, 2), Point(3, 4)])
    assert isinstance(nt, Point) and nt.x.tolist() == [1, 3]
    nested = default_collate([([1, 2], {"a": 1}), ([3, 4], {"a": 2})])
    assert nested[0][0].tolist() == [1, 3] and nested[1]["a"].tolist() == [1, 2]


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([phalanx.zeros(2), phalanx.zeros(3)])


def test_batch_size_none_converts_samples():
    class Arrays(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((2,), i, np.int64), i

    out = list(DataLoader(Arrays(), batch_size=None))
    assert len(out) == 3
    assert isinstance(out[1][0], phalanx.Tensor) and out[1][0].tolist() == [1, 1] and out[1][1] == 1
    assert default_convert("x") == "x"


def test_custom_collate_fn():
    loader = DataLoader(Range(5), batch_size=2, collate_fn=lambda b: sum(b))
    assert list(loader) == [1, 5, 4]


# -------------------------------------------------------------------------------------- samplers


def test_samplers_basic():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    s = RandomSampler(range(20), generator=phalanx.Generator(3))
    order = list(s)
    assert sorted(order) == list(range(20)) and order != list(range(20)) and len(s) == 20
    r = list(
        RandomSampler(range(5), replacement=True, num_samples=50, generator=phalanx.Generator(0))
    )
    assert len(r) == 50 and set(r) <= set(range(5))
    longer = list(RandomSampler(range(5), num_samples=12, generator=phalanx.Generator(0)))
    assert len(longer) == 12 and sorted(longer[:10]) == sorted(list(range(5)) * 2)
    sub = list(SubsetRandomSampler([10, 20, 30], generator=phalanx.Generator(0)))
    assert sorted(sub) == [10, 20, 30]
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler([])


def test_batch_sampler_matches_torch():
    torch = pytest.importorskip("torch")
    for n, bs, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True)]:
        ours = BatchSampler(SequentialSampler(range(n)), bs, drop)
        ref = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), bs, drop)
        assert list(ours) == list(ref) and len(ours) == len(ref)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)


def test_shuffle_reproducible_with_manual_seed():
    phalanx.manual_seed(123)
    a = flat(DataLoader(Range(50), batch_size=8, shuffle=True))
    phalanx.manual_seed(123)
    b = flat(DataLoader(Range(50), batch_size=8, shuffle=True))
    assert a == b and sorted(a) == list(range(50)) and a != list(range(50))
    phalanx.manual_seed(124)
    assert flat(DataLoader(Range(50), batch_size=8, shuffle=True)) != a


def test_shuffle_generator_reproducible_and_independent():
    def orders(seed, epochs=3):
        loader = DataLoader(
            Range(40), batch_size=7, shuffle=True, generator=phalanx.Generator(seed)
        )
        return [flat(loader) for _ in range(epochs)]

    first = orders(5)
    assert first == orders(5)
    assert first[0] != first[1] != first[2]  # each epoch has its own order
    assert all(sorted(o) == list(range(40)) for o in first)
    assert orders(6)[0] != first[0]
    # Loaders with their own generators do not disturb each other or the global generator.
    state = _C.default_generator().get_state()
    la = DataLoader(Range(40), batch_size=7, shuffle=True, generator=phalanx.Generator(5))
    lb = DataLoader(Range(40), batch_size=7, shuffle=True, generator=phalanx.Generator(9))
    interleaved = []
    for _ in range(3):
        ita, itb = iter(la), iter(lb)
        got = []
        for xa, _xb in zip(ita, itb):
            got.append(xa)
            phalanx.rand(3)  # other random work in between
        got += list(ita)
        interleaved.append(flat(got))
    assert interleaved == first
    phalanx.manual_seed(0)
    state = _C.default_generator().get_state()
    list(DataLoader(Range(10), batch_size=3, shuffle=True, generator=phalanx.Generator(1)))
    assert _C.default_generator().get_state() == state


def test_loader_argument_errors():
    ds = Range(5)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, shuffle=True, sampler=SequentialSampler(ds))
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=BatchSampler(SequentialSampler(ds), 2, False))
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="threads"):
        DataLoader(ds, num_workers=1, multiprocessing_context="fork")


def test_custom_batch_sampler_and_sampler():
    ds = Range(6)
    loader = DataLoader(ds, batch_sampler=[[5, 0], [1]])
    assert [b.tolist() for b in loader] == [[5, 0], [1]]
    assert flat(DataLoader(ds, sampler=[3, 2, 1], batch_size=2)) == [3, 2, 1]


# ---------------------------------------------------------------------------- DistributedSampler

DIST_CASES = [
    (n, r, shuffle, drop, epoch)
    for n in (1, 3, 10, 11, 16)
    for r in (1, 2, 3, 4, 7)
    for shuffle in (False, True)
    for drop in (False, True)
    for epoch in (0, 2)
    if not (drop and n < r)
]


@pytest.mark.parametrize("n,replicas,shuffle,drop_last,epoch", DIST_CASES)
def test_distributed_sampler_matches_torch(monkeypatch, n, replicas, shuffle, drop_last, epoch):
    """Same partitions as torch's: with shuffle, torch is handed phalanx's permutation for the
    seed + epoch (the generators differ), so the padding and striding are compared exactly."""
    torch = pytest.importorskip("torch")
    real_randperm = torch.randperm

    def phalanx_randperm(m, generator=None):
        seed = generator.initial_seed()
        return torch.tensor(phalanx.randperm(m, generator=phalanx.Generator(seed)).tolist())

    monkeypatch.setattr(torch, "randperm", phalanx_randperm)
    ds = list(range(n))
    union = []
    for rank in range(replicas):
        ours = DistributedSampler(
            ds, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=7, drop_last=drop_last
        )
        ref = torch.utils.data.DistributedSampler(
            ds, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=7, drop_last=drop_last
        )
        ours.set_epoch(epoch)
        ref.set_epoch(epoch)
        got = list(ours)
        assert got == list(ref), (rank, got, list(ref))
        assert len(ours) == len(ref) == len(got)
        union += got
    monkeypatch.setattr(torch, "randperm", real_randperm)
    if not drop_last:
        assert set(union) == set(ds)


def test_distributed_sampler_epochs_and_errors():
    ds = list(range(20))
    s = DistributedSampler(ds, num_replicas=2, rank=0, seed=3)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0
    s.set_epoch(0)
    assert list(s) == e0
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(ds, num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="num_replicas"):
        DistributedSampler(ds)


def test_distributed_sampler_in_loader():
    ds = Range(10)
    seen = []
    for rank in range(3):
        sampler = DistributedSampler(ds, num_replicas=3, rank=rank, shuffle=True, seed=1)
        loader = DataLoader(ds, batch_size=2, sampler=sampler)
        assert len(loader) == 2
        seen += flat(loader)
    assert len(seen) == 12 and set(seen) == set(range(10))


# ------------------------------------------------------------------------------ prefetch threads


class Augmented(Dataset):
    """uint8 images through random per-sample transforms: results depend on the random draws."""

    def __init__(self, n: int = 37) -> None:
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, size=(n, 12, 12), dtype=np.uint8)
        self.tf = T.Compose([T.RandomCrop(10, padding=2), T.RandomHorizontalFlip(), T.ToTensor()])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.tf(self.images[i]), i


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_give_same_batches(workers):
    def run(num_workers):
        phalanx.manual_seed(11)
        loader = DataLoader(
            Augmented(),
            batch_size=5,
            shuffle=True,
            num_workers=num_workers,
            **({"prefetch_factor": 3} if num_workers else {}),
        )
        return [as_lists(loader) for _ in range(2)]

    ref = run(0)
    assert ref[0] != ref[1]
    assert run(workers) == ref


def test_workers_are_threads_and_run_ahead():
    ds = Range(40)
    pid = os.getpid()
    infos = []

    class Probe(Range):
        def __getitem__(self, i):
            info = get_worker_info()
            infos.append((info, os.getpid()))
            return super().__getitem__(i)

    ds = Probe(40)
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    it = iter(loader)
    first = next(it)
    assert first.tolist() == [0, 1, 2, 3]
    rest = list(it)
    assert flat([first] + rest) == list(range(40))
    assert all(p == pid for _, p in infos)  # no processes
    assert all(i is not None and i.num_workers == 2 and i.id in (0, 1) for i, _ in infos)
    assert threading.current_thread().name not in ds.threads
    assert all(name.startswith("phalanx-data") for name in ds.threads)
    assert get_worker_info() is None


class Faulty(Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, i):
        if i == 13:
            raise KeyError(f"sample {i} is broken: checksum 0xdead")
        return i


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_worker_exception_propagates(workers):
    loader = DataLoader(Faulty(), batch_size=4, num_workers=workers)
    got = []
    with pytest.raises(KeyError, match="sample 13 is broken: checksum 0xdead"):
        for b in loader:
            got.append(b)
    assert flat(got) == list(range(12))
    assert flat(DataLoader(Range(8), batch_size=4, num_workers=workers)) == list(range(8))


class BadAt(Dataset):
    """Sample `bad` raises `error`; the others are their index."""

    def __init__(self, bad, error, n=20):
        self.bad, self.error, self.n = bad, error, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise self.error
        return i


class NeedsTwoArguments(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


_CAUGHT = r"Caught {} in DataLoader worker thread \d while {}\.\nOriginal Traceback \(most recent"


@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_worker_exception_names_thread_and_sample_and_keeps_its_type(batch_size):
    loader = DataLoader(
        BadAt(7, ValueError("sample 7 is bad")), batch_size=batch_size, num_workers=2
    )
    with pytest.raises(ValueError) as info:
        list(loader)
    assert type(info.value) is ValueError
    msg = str(info.value)
    assert re.match(_CAUGHT.format("ValueError", "loading sample index 7"), msg), msg
    assert "in __getitem__\n    raise self.error" in msg  # the original traceback
    assert msg.rstrip().endswith("ValueError: sample 7 is bad")


def test_main_thread_exception_is_unchanged():  # num_workers=0: as PyTorch, the bare exception
    with pytest.raises(ValueError) as info:
        list(DataLoader(BadAt(7, ValueError("sample 7 is bad")), num_workers=0))
    assert str(info.value) == "sample 7 is bad"


def test_worker_exception_message_for_keyerror_and_odd_types():
    with pytest.raises(KeyError) as info:
        list(DataLoader(BadAt(3, KeyError("k")), num_workers=1))
    assert str(info.value).startswith("Caught KeyError in DataLoader worker thread 0 while")
    # A type that can't be rebuilt from one message becomes RuntimeError, as in PyTorch.
    with pytest.raises(
        RuntimeError, match=_CAUGHT.format("NeedsTwoArguments", "loading sample index 3")
    ):
        list(DataLoader(BadAt(3, NeedsTwoArguments(1, 2)), num_workers=1))


def test_worker_exception_in_collate_batch_fetch_and_init_fn():
    def bad_collate(samples):
        raise TypeError("can't collate")

    with pytest.raises(
        TypeError,
        match=_CAUGHT.format("TypeError", r"collating the batch of sample indices \[0, 1\]"),
    ):
        list(DataLoader(Range(4), batch_size=2, num_workers=1, collate_fn=bad_collate))

    class BadBatches(TensorDataset):
        def get_batch(self, indices):
            raise IndexError("no batch")

    ds = BadBatches(phalanx.arange(0, 30, 1))
    msg = r"loading the batch of sample indices \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "
    msg += r"\.\.\. \(13 in all\)\]"
    with pytest.raises(IndexError, match=_CAUGHT.format("IndexError", msg)):
        next(iter(DataLoader(ds, batch_size=13, num_workers=1)))

    def bad_init(wid):
        raise OSError("no device")

    with pytest.raises(OSError, match=_CAUGHT.format("OSError", "running worker_init_fn")):
        list(DataLoader(Range(4), num_workers=2, worker_init_fn=bad_init))


def _next_within(it, seconds=60):
    """next(it) on a daemon thread, so that a hang fails this test instead of the suite."""
    out = {}

    def run():
        try:
            out["value"] = next(it)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"next() still blocked after {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


class BrokenStream(IterableDataset):
    def __iter__(self):
        yield from range(8)
        raise ValueError("stream broke")


@pytest.mark.parametrize("workers", [0, 2])
def test_exhausted_iterable_loader_keeps_raising_stop_iteration(workers):
    it = iter(DataLoader(Stream(10), batch_size=4, num_workers=workers))
    assert len(list(it)) == 3
    for _ in range(2):  # before: blocked forever with workers
        with pytest.raises(StopIteration):
            _next_within(it)
    it = iter(DataLoader(BrokenStream(), batch_size=3, num_workers=workers))
    assert _next_within(it).tolist() == [0, 1, 2]
    assert _next_within(it).tolist() == [3, 4, 5]
    with pytest.raises(ValueError) as info:
        _next_within(it)
    if workers:
        assert re.match(_CAUGHT.format("ValueError", "loading batch 2"), str(info.value))
        with pytest.raises(StopIteration):  # after the error: the end, not a hang
            _next_within(it)


def test_iterable_loader_timeout_is_a_runtime_error():
    class Slow(IterableDataset):
        def __iter__(self):
            yield 1
            time.sleep(30)
            yield 2

    it = iter(DataLoader(Slow(), batch_size=None, num_workers=1, timeout=0.2))
    assert _next_within(it) == 1
    with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
        _next_within(it)
    with pytest.raises(StopIteration):
        _next_within(it)


_STUCK = """
import threading
from phalanx.utils.data import DataLoader, Dataset, IterableDataset

class Stuck(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 2:
            threading.Event().wait()  # forever
        return i

class StuckStream(IterableDataset):
    def __iter__(self):
        yield 0
        threading.Event().wait()

for ds in (Stuck(), StuckStream()):
    it = iter(DataLoader(ds, batch_size=None, num_workers=2 if ds.__class__ is Stuck else 1,
                         timeout=0.3))
    assert next(it) == 0
    if ds.__class__ is Stuck:
        assert next(it) == 1
    try:
        next(it)
    except RuntimeError as e:
        print("timed out:", e, flush=True)
print("exiting", flush=True)
"""


def test_process_exits_after_a_loader_timed_out_on_a_stuck_thread():
    # Before: the stuck prefetch thread was joined at interpreter exit, which never came.
    cmd = [*PYTHON, "-c", _STUCK]
    try:
        done = subprocess.run(
            cmd, env=python_env(), capture_output=True, text=True, timeout=scaled(120)
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the interpreter did not exit; it printed {e.stdout!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("timed out after 0.3 seconds") == 2, done.stdout
    assert done.stdout.endswith("exiting\n")


def test_worker_init_fn_runs_per_thread():
    ids = []
    loader = DataLoader(Range(16), batch_size=2, num_workers=3, worker_init_fn=ids.append)
    list(loader)
    assert sorted(ids) == sorted(set(ids)) and set(ids) <= {0, 1, 2}


def test_abandoned_iterator_is_fine():
    loader = DataLoader(Range(100), batch_size=2, num_workers=2)
    it = iter(loader)
    next(it)
    del it
    assert flat(loader)[:4] == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- IterableDataset


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_dataset(workers):
    loader = DataLoader(Stream(10), batch_size=4, num_workers=workers)
    assert len(loader) == 3
    assert [b.tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(list(DataLoader(Stream(10), batch_size=4, drop_last=True))) == 2
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)


# -------------------------------------------------------------------------------------- resume


def _loader(kind, workers=0):
    if kind == "generator":
        return DataLoader(
            Augmented(),
            batch_size=4,
            shuffle=True,
            generator=phalanx.Generator(42),
            num_workers=workers,
        )
    if kind == "global":
        return DataLoader(Augmented(), batch_size=4, shuffle=True, num_workers=workers)
    if kind == "sequential":
        return DataLoader(Augmented(), batch_size=4, num_workers=workers)
    sampler = DistributedSampler(Augmented(), num_replicas=2, rank=1, seed=3)
    sampler.set_epoch(4)
    return DataLoader(Augmented(), batch_size=4, sampler=sampler, num_workers=workers)


@pytest.mark.parametrize("kind", ["generator", "global", "sequential", "distributed"])
@pytest.mark.parametrize("workers", [0, 2])
def test_state_dict_resume_mid_epoch(kind, workers):
    phalanx.manual_seed(5)
    loader = _loader(kind, workers)
    list(loader)  # one full epoch first, so the generator has moved on
    it = iter(loader)
    consumed = [next(it) for _ in range(3)]
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["batches_consumed"] == 3
    rest = as_lists(it)
    assert len(consumed) + len(rest) == len(loader)

    phalanx.manual_seed(999)  # the global generator is elsewhere now: the state must suffice
    fresh = _loader(kind, workers)
    fresh.load_state_dict(state)
    resumed = iter(fresh)
    assert as_lists(resumed) == rest
    assert fresh.state_dict()["epoch"] == 2


def test_state_dict_after_exhaustion_and_fresh():
    loader = DataLoader(Range(5), batch_size=2)
    assert loader.state_dict() == {
        "epoch": 0,
        "batches_consumed": 0,
        "sampler": None,
        "base_seed": None,
    }
    list(loader)
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["batches_consumed"] == 0
    with pytest.raises(ValueError, match="missing keys"):
        loader.load_state_dict({})


def test_resume_generator_continues_like_uninterrupted_run():
    """After resuming, the following epochs also match an uninterrupted run."""

    def make():
        return DataLoader(Range(30), batch_size=4, shuffle=True, generator=phalanx.Generator(8))

    ref_loader = make()
    ref = [flat(ref_loader) for _ in range(3)]
    loader = make()
    list(loader)
    it = iter(loader)
    next(it)
    next(it)
    state = loader.state_dict()
    fresh = make()
    fresh.load_state_dict(state)
    tail = flat(fresh)
    assert ref[1][8:] == tail
    assert flat(fresh) == ref[2]
