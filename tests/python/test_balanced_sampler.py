"""BalancedDistributedSampler: one shared permutation per epoch, each global batch split by the
current integer shares. Every index exactly once per epoch across ranks however the shares
change; a resumed sampler (directly, or through a DataLoader) continues exactly."""

from __future__ import annotations

import numpy as np
import pytest

import phalanx
from phalanx.utils.data import BalancedDistributedSampler, DataLoader, TensorDataset


class Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def samplers(n, world, g, **kw):
    return [
        BalancedDistributedSampler(Sized(n), g, num_replicas=world, rank=r, **kw)
        for r in range(world)
    ]


def run_epoch(ss, changes=None):
    """Each rank's batches for one epoch, applying changes {step: shares} before drawing
    that step (as the balancer would, on every rank)."""
    changes = changes or {}
    its = [iter(s) for s in ss]
    steps = []
    while True:
        step = ss[0].steps_drawn
        if step in changes:
            for s in ss:
                s.set_shares(changes[step])
        batch = [next(it, None) for it in its]
        if batch[0] is None:
            assert all(b is None for b in batch)
            return steps
        steps.append(batch)


@pytest.mark.parametrize(
    "world,g,changes",
    [(2, 16, {2: [5, 11], 5: [15, 1]}), (3, 32, {1: [5, 11, 16], 4: [16, 5, 11], 6: [1, 1, 30]})],
)
def test_every_index_once_per_epoch_across_ranks_and_share_changes(world, g, changes):
    n = 250
    ss = samplers(n, world, g, seed=7)
    for epoch in range(2):
        for s in ss:
            s.set_epoch(epoch)
        perm = phalanx.randperm(n, generator=phalanx.Generator(7 + epoch)).tolist()
        steps = run_epoch(ss, {k + epoch * 7: v for k, v in changes.items()})
        assert len(steps) == n // g == len(ss[0])
        seen = []
        for k, parts in enumerate(steps):
            shares = ss[0].shares_at(epoch * 7 + k)
            assert [len(p) for p in parts] == shares
            # step k covers exactly window k of the shared permutation, in rank order
            assert sum(parts, []) == perm[k * g : (k + 1) * g]
            seen += sum(parts, [])
        assert len(seen) == len(set(seen)) == (n // g) * g


def test_without_drop_last_the_short_last_batch_is_split_and_nothing_is_skipped():
    ss = samplers(50, 3, 16, shuffle=False, drop_last=False, shares=[2, 4, 10])
    steps = run_epoch(ss)
    assert len(steps) == 4 == len(ss[0])
    assert sorted(sum((sum(p, []) for p in steps), [])) == list(range(50))
    assert [len(p) for p in steps[-1]] == [0, 1, 1]  # 2 left, split 2:4:10


def test_default_shares_are_equal_within_one_and_epochs_differ():
    ss = samplers(100, 3, 10)
    assert ss[0].shares == [4, 3, 3]
    a = run_epoch(ss)
    for s in ss:
        s.set_epoch(1)
    b = run_epoch(ss)
    assert a != b
    for s in ss:
        s.set_epoch(0)
    assert run_epoch(ss) == a  # same epoch, same order


def test_change_scheduled_ahead_hits_every_rank_at_the_same_step():
    """A loader with prefetch draws ahead: the change is keyed by step, not by wall time."""
    s0, s1 = samplers(64, 2, 8, seed=3)
    it0, it1 = iter(s0), iter(s1)
    first = [next(it0) for _ in range(4)]  # rank 0 has drawn steps 0-3
    s0.set_shares([3, 5], at_step=4)
    s1.set_shares([3, 5], at_step=4)
    second = [next(it1) for _ in range(6)]  # rank 1 draws steps 0-5 after the call
    assert [len(b) for b in first] == [4] * 4
    assert [len(b) for b in second] == [4] * 4 + [5, 5]
    assert len(next(it0)) == 3
    with pytest.raises(RuntimeError, match="already drawn the batch of step 4"):
        s0.set_shares([4, 4], at_step=3)


def uninterrupted(n, world, g, changes):
    ss = samplers(n, world, g, seed=11)
    return run_epoch(ss, changes)


def test_resume_mid_epoch_continues_exactly_with_the_shares():
    changes = {1: [2, 9, 5], 3: [5, 5, 6], 6: [1, 14, 1]}
    want = uninterrupted(200, 3, 16, changes)
    ss = samplers(200, 3, 16, seed=11)
    its = [iter(s) for s in ss]
    got = []
    for step in range(4):
        if step in changes:
            for s in ss:
                s.set_shares(changes[step])
        got.append([next(it) for it in its])
    for s in ss:
        s.set_shares([8, 4, 4], at_step=5)  # scheduled, not yet in force: must survive too
    states = [s.state_dict() for s in ss]
    fresh = samplers(200, 3, 16, seed=99, shares=[14, 1, 1])  # load must override both
    for s, st in zip(fresh, states):
        s.load_state_dict(st)
    assert fresh[0].shares == [5, 5, 6]
    rest = run_epoch(fresh, {6: changes[6]})
    want_changes = {**changes, 5: [8, 4, 4]}
    assert got + rest == uninterrupted(200, 3, 16, want_changes)
    assert want[:4] == got


def test_state_dict_round_trips_through_phalanx_save(tmp_path):
    (s,) = samplers(40, 1, 4)
    s.set_shares([4], at_step=3)
    phalanx.save(s.state_dict(), tmp_path / "s.phx")
    (t,) = samplers(40, 1, 4)
    t.load_state_dict(phalanx.load(tmp_path / "s.phx"))
    assert list(t) == list(s)


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_resume_after_share_changes_mid_epoch(workers):
    n, g = 96, 12
    data = TensorDataset(phalanx.arange(n))

    def run(stop=None, state=None):
        s = BalancedDistributedSampler(data, g, seed=5, num_replicas=2, rank=1)
        loader = DataLoader(data, batch_sampler=s, num_workers=workers)
        if state is not None:
            loader.load_state_dict(state)
        got = []
        for (xb,) in loader:
            got.append(xb.numpy().tolist())
            if state is None and len(got) == 1:
                # the balancer's call, for a step no rank has drawn yet (prefetch included)
                s.set_shares([2, 10], at_step=6)
            if stop is not None and len(got) == stop:
                return got, loader.state_dict()
        return got, None

    full, _ = run()
    assert [len(b) for b in full] == [6] * 6 + [10] * 2
    head, state = run(stop=5)
    tail, _ = run(state=state)
    assert head + tail == full


def test_bad_arguments_are_named():
    d = Sized(10)
    with pytest.raises(ValueError, match="sum to global_batch_size=8.*sum 7"):
        BalancedDistributedSampler(d, 8, num_replicas=2, rank=0, shares=[3, 4])
    with pytest.raises(ValueError, match="one entry per rank \\(2\\), got 3"):
        BalancedDistributedSampler(d, 8, num_replicas=2, rank=0, shares=[2, 3, 3])
    with pytest.raises(ValueError, match="at least 1 sample.*rank\\(s\\) \\[0\\]"):
        BalancedDistributedSampler(d, 8, num_replicas=2, rank=0, shares=[0, 8])
    with pytest.raises(TypeError, match="shares\\[1\\] must be an int, got float 4.0"):
        BalancedDistributedSampler(d, 8, num_replicas=2, rank=0, shares=[4, 4.0])
    with pytest.raises(TypeError, match="shares must be a list"):
        BalancedDistributedSampler(d, 8, num_replicas=2, rank=0, shares=8)
    with pytest.raises(ValueError, match="global_batch_size=2 is smaller than the number of ranks"):
        BalancedDistributedSampler(d, 2, num_replicas=3, rank=0)
    with pytest.raises(TypeError, match="global_batch_size must be an int, got float"):
        BalancedDistributedSampler(d, 8.0, num_replicas=2, rank=0)
    with pytest.raises(ValueError, match="Invalid rank 2"):
        BalancedDistributedSampler(d, 8, num_replicas=2, rank=2)
    s = BalancedDistributedSampler(d, 8, num_replicas=2, rank=0)
    with pytest.raises(ValueError, match="shares must sum"):
        s.set_shares([1, 1])
    with pytest.raises(ValueError, match="the state has global_batch_size=4, this sampler 8"):
        s.load_state_dict(dict(s.state_dict(), global_batch_size=4))
    with pytest.raises(ValueError, match="missing keys \\['changes'\\]"):
        s.load_state_dict({"epoch": 0, "position": 0, "step": 0})


def test_without_a_process_group_rank_and_world_must_be_given():
    with pytest.raises(RuntimeError, match="num_replicas was not given"):
        BalancedDistributedSampler(Sized(10), 4)


def test_batches_are_consistent_with_numpy_reference():
    """Independent re-derivation of the split for shares changing every step."""
    n, g = 60, 10
    ss = samplers(n, 2, g, shuffle=False)
    rng = np.random.default_rng(0)
    changes = {k: [int(a), g - int(a)] for k, a in enumerate(rng.integers(1, g, size=6))}
    steps = run_epoch(ss, changes)
    for k, (a, b) in enumerate(steps):
        cut = changes[k][0]
        assert a == list(range(k * g, k * g + cut)) and b == list(range(k * g + cut, (k + 1) * g))
