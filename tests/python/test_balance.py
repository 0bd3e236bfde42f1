"""DistributedDataParallel(balance=sampler) on local ranks.

Exactness: whatever the shares do during the run (set by hand to 5/11/16 and permuted, or
moved by the balancer toward a rank made slow), parameters after every step equal one
process training on the concatenated global batch. No churn: equal ranks keep equal shares.
(Adaptation on an emulated cluster with CPU quotas is tested by the cluster tests.)
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from _spawn import run_ranks

import phalanx
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.nn.parallel import DistributedDataParallel as DDP
from phalanx.nn.parallel._balance import proportional_shares
from phalanx.utils.data import BalancedDistributedSampler, DataLoader, TensorDataset

LR = 0.1
SEED = 3


class Net(nn.Module):
    def __init__(self, sync_bn: bool = False, delay: float = 0.0):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6) if sync_bn else None
        self.fc = nn.Linear(6 * 4 * 4, 5)
        self.delay = delay  # seconds per sample: makes this rank "slow"

    def forward(self, x):
        if self.delay:
            time.sleep(self.delay * x.shape[0])
        h = self.conv(x)
        if self.bn is not None:
            h = self.bn(h)
        h = F.max_pool2d(F.relu(h), 2)
        return self.fc(h.reshape(x.shape[0], -1))


def dataset(n: int):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, size=n).astype(np.int64)
    return x, y


def build(sync_bn, convert=True):
    """sync_bn: a BatchNorm layer; convert: made a SyncBatchNorm (the control leaves it
    a BatchNorm2d, which normalises each rank's batch by itself)."""
    phalanx.manual_seed(0)
    model = Net(sync_bn)
    if sync_bn and convert:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        assert isinstance(model.bn, nn.SyncBatchNorm)
    return model


def state_of(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------ rank side


def train_balanced(rank, world, g, steps, schedule, slow, sync_bn, interval, convert=True):
    x, y = dataset(g * steps)
    data = TensorDataset(phalanx.tensor(x), phalanx.tensor(y))
    sampler = BalancedDistributedSampler(data, g, seed=SEED)
    loader = DataLoader(data, batch_sampler=sampler)
    model = build(sync_bn, convert)
    model.delay = slow.get(rank, 0.0)
    ddp = DDP(model, balance=sampler, balance_interval=interval)
    opt = phalanx.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    history, sizes = [state_of(model)], []
    for step, (xb, yb) in enumerate(loader):
        opt.zero_grad()
        F.cross_entropy(ddp(xb), yb).backward()
        opt.step()
        history.append(state_of(model))
        sizes.append(xb.shape[0])
        if step + 1 in schedule:  # a hand-set change, from the next step on
            sampler.set_shares(schedule[step + 1])
    return history, sizes, ddp.balancer.metrics()


def reference(g, steps, sync_bn):
    x, y = dataset(g * steps)
    perm = phalanx.randperm(len(x), generator=phalanx.Generator(SEED)).tolist()
    model = build(sync_bn, convert=False)  # one process: BatchNorm sees the global batch
    opt = phalanx.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    history = [state_of(model)]
    for k in range(steps):
        idx = perm[k * g : (k + 1) * g]
        opt.zero_grad()
        F.cross_entropy(model(phalanx.tensor(x[idx])), phalanx.tensor(y[idx])).backward()
        opt.step()
        history.append(state_of(model))
    return history


def assert_same(got, want, what):
    for step, (g, w) in enumerate(zip(got, want)):
        for name in w:
            np.testing.assert_allclose(
                g[name], w[name], rtol=2e-5, atol=2e-6, err_msg=f"{what}: step {step}, {name}"
            )


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize(
    "world,g,schedule",
    [
        (2, 16, {2: [5, 11], 4: [11, 5], 6: [1, 15]}),
        (3, 32, {1: [5, 11, 16], 3: [16, 5, 11], 5: [11, 16, 5]}),
    ],
)
@pytest.mark.parametrize("sync_bn", [False, True], ids=["plain", "syncbn"])
def test_every_step_equals_one_process_on_the_global_batch(world, g, schedule, sync_bn):
    steps = 8
    results = run_ranks(
        "test_balance", "train_balanced", world, (g, steps, schedule, {}, sync_bn, 1000)
    )
    want = reference(g, steps, sync_bn)
    for rank, (history, _, _) in enumerate(results):
        assert_same(history, want, f"rank {rank} of {world}")
    shares_seen = {tuple(r[1][k] for r in results) for k in range(steps)}
    assert set(map(tuple, schedule.values())) <= shares_seen


def test_control_plain_batchnorm_with_unequal_shares_is_not_the_global_batch():
    """The control for the SyncBatchNorm case above: per-rank statistics differ."""
    g, steps, schedule = 16, 3, {1: [5, 11]}
    args = (g, steps, schedule, {}, True, 1000, False)
    results = run_ranks("test_balance", "train_balanced", 2, args)
    with pytest.raises(AssertionError):
        assert_same(results[0][0], reference(g, steps, True), "rank 0")


def test_balancer_moves_shares_to_the_fast_rank_and_stays_exact():
    """Rank 1 sleeps 4 ms per sample in forward: the balancer shifts samples to rank 0
    mid-epoch, and every update still equals the global batch's."""
    g, steps = 32, 14
    results = run_ranks(
        "test_balance", "train_balanced", 2, (g, steps, {}, {1: 0.004}, False, 2), timeout=120
    )
    want = reference(g, steps, False)
    for rank, (history, _, _) in enumerate(results):
        assert_same(history, want, f"rank {rank}")
    sizes0, sizes1 = results[0][1], results[1][1]
    metrics = results[0][2]
    assert metrics["changes"], metrics
    assert sizes0[0] == sizes1[0] == 16
    assert sizes0[-1] > 20 > 12 > sizes1[-1], (sizes0, sizes1, metrics)
    assert [a + b for a, b in zip(sizes0, sizes1)] == [g] * steps
    assert metrics["speeds"][0] > 2 * metrics["speeds"][1]
    assert results[1][2]["changes"] == metrics["changes"]  # every rank decided the same


def equal_ranks(rank, world, g, steps):
    n = g * steps
    data = TensorDataset(phalanx.zeros(n, 3, 8, 8), phalanx.zeros(n, dtype=phalanx.int64))
    sampler = BalancedDistributedSampler(data, g, seed=SEED)
    model = build(False)
    # Equal "phones": each sample costs 1 ms of (sleeping) work on both ranks. Real compute
    # alone would not make equal ranks on a shared 2-core machine: another job descheduling
    # one rank for seconds is a real slowdown, which the balancer is right to follow.
    model.delay = 0.001
    ddp = DDP(model, balance=sampler)
    return train_sizes(ddp, data, sampler, lr=0.01), ddp.balancer.metrics()


def train_sizes(ddp, data, sampler, lr) -> list[int]:
    """Trains `ddp` with SGD over `data` as `sampler` splits it; each step's local batch."""
    opt = phalanx.optim.SGD(ddp.parameters(), lr=lr)
    sizes = []
    for xb, yb in DataLoader(data, batch_sampler=sampler):
        opt.zero_grad()
        F.cross_entropy(ddp(xb), yb).backward()
        opt.step()
        sizes.append(xb.shape[0])
    return sizes


def test_equal_ranks_keep_equal_shares_over_100_steps():
    g = 32
    results = run_ranks("test_balance", "equal_ranks", 2, (g, 100), timeout=180)
    for rank, (sizes, metrics) in enumerate(results):
        assert len(sizes) == 100
        assert all(abs(s - g // 2) <= 1 for s in sizes), (rank, sizes, metrics["changes"])
        # each rank's step scatter (the noise margin's input) is reported, and small here
        assert len(metrics["noises"]) == 2 and all(0 <= n < 0.5 for n in metrics["noises"])


# ------------------------------------------------------------------------------ the rule


def test_proportional_shares_respect_minimum_cap_and_sum():
    assert proportional_shares([1.0, 1.0], 32) == [16, 16]
    assert proportional_shares([3.0, 1.0], 32) == [24, 8]
    assert proportional_shares([1.0, 1.0, 1.0], 32) == [11, 11, 10]  # ties: lower rank
    assert proportional_shares([1000.0, 1.0], 32) == [31, 1]  # minimum one sample
    assert proportional_shares([3.0, 1.0, 1.0], 30, caps=[10, 30, 30]) == [10, 10, 10]
    assert proportional_shares([1.0, 1.0], 5, caps=[1, 30]) == [1, 4]
    with pytest.raises(ValueError, match="max_samples_per_rank=\\[4, 4\\] \\(sum 8\\)"):
        proportional_shares([1.0, 1.0], 10, caps=[4, 4])
    assert proportional_shares([1000.0, 1.0], 32, floors=[2, 2]) == [30, 2]
    assert proportional_shares([1000.0, 1.0, 1.0], 4, floors=[2, 2, 2]) == [2, 1, 1]


def test_default_least_share_is_two_with_a_per_rank_batchnorm():
    from phalanx.nn.parallel.distributed import _default_min_share

    assert _default_min_share(build(False), 32, 2) == 1  # no BatchNorm
    assert _default_min_share(build(True, convert=False), 32, 2) == 2
    assert _default_min_share(build(True, convert=False), 3, 2) == 1  # 2 each do not fit
    assert _default_min_share(build(True), 32, 2) == 1  # SyncBatchNorm: global statistics


class OneByOneBatchNorm(nn.Module):
    """BatchNorm on a 1x1 map: in training it needs 2 samples (MobileNet's last layers on
    small images: the heterogeneous example failed when a slow rank was given 1)."""

    def __init__(self, delay: float):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5)
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay * x.shape[0])
        h = self.bn(F.max_pool2d(self.conv(x), 8))
        return self.fc(h.reshape(x.shape[0], -1))


def very_slow_rank_with_batchnorm(rank, world, g, steps, explicit):
    x, y = dataset(g * steps)
    data = TensorDataset(phalanx.tensor(x), phalanx.tensor(y))
    sampler = BalancedDistributedSampler(data, g, seed=SEED)
    phalanx.manual_seed(0)
    model = OneByOneBatchNorm(0.02 if rank == 1 else 0.0)
    kwargs = {} if explicit is None else {"min_samples_per_rank": explicit}
    ddp = DDP(model, balance=sampler, balance_interval=2, **kwargs)
    sizes = train_sizes(ddp, data, sampler, lr=LR)
    return sizes, ddp.balancer.metrics(), ddp.balancer.floor


@pytest.mark.parametrize("explicit", [None, 3])
def test_a_very_slow_rank_keeps_its_least_share(explicit):
    """Rank 1 is 100x slower: the balancer would give it 1 sample, on which its BatchNorm
    (1x1 map) cannot train; it keeps 2 (the default with a BatchNorm), or what was asked."""
    g, steps = 16, 8
    results = run_ranks(
        "test_balance", "very_slow_rank_with_batchnorm", 2, (g, steps, explicit), timeout=120
    )
    (s0, m0, floor), (s1, _, _) = results
    want = 2 if explicit is None else explicit
    assert floor == want
    assert m0["changes"], m0
    assert s1[-1] == want and min(s1) == want, (s1, m0["changes"])
    assert [a + b for a, b in zip(s0, s1)] == [g] * steps


def test_convert_sync_batchnorm_keeps_parameters_buffers_and_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=None), nn.ReLU())
    model[1].eval()
    bn = model[1]
    out = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert out is model and isinstance(model[1], nn.SyncBatchNorm)
    sync = model[1]
    assert sync.weight is bn.weight and sync.bias is bn.bias
    assert sync.running_mean is bn.running_mean and sync.running_var is bn.running_var
    assert sync.momentum is None and not sync.training
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    lone = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(3))
    assert isinstance(lone, nn.SyncBatchNorm)


def test_sync_batchnorm_without_a_process_group_is_batchnorm():
    phalanx.manual_seed(1)
    x = phalanx.randn(6, 4, 3, 3)
    plain, sync = nn.BatchNorm2d(4), nn.SyncBatchNorm(4)
    np.testing.assert_allclose(sync(x).detach().numpy(), plain(x).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(sync.running_var.numpy(), plain.running_var.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="expected at least 2D input \\(got 1D input\\)"):
        sync(phalanx.randn(4))


# ------------------------------------------------------------------- wimpy-nodes weighting


def train_run_time(rank, world, g, steps, slow):
    x, y = dataset(g * steps)
    model = build(False)
    model.delay = slow.get(rank, 0.0)
    ddp = DDP(model, batch_weighting="run_time")
    opt = phalanx.optim.SGD(ddp.parameters(), lr=LR)
    history, weights = [state_of(model)], []
    per = g // world
    for k in range(steps):
        part = slice(k * g + rank * per, k * g + (rank + 1) * per)  # equal batches
        opt.zero_grad()
        F.cross_entropy(ddp(phalanx.tensor(x[part])), phalanx.tensor(y[part])).backward()
        opt.step()
        history.append(state_of(model))
        weights.append(list(ddp.balancer.weights))
    return history, weights


def test_run_time_weighting_is_the_speed_weighted_sum_of_rank_gradients():
    """The wimpy-nodes method: equal batches, rank r's mean-loss gradient weighted by its
    speed over the sum of speeds. Not the global batch's gradient (documented)."""
    g, steps, world = 16, 6, 2
    results = run_ranks("test_balance", "train_run_time", world, (g, steps, {1: 0.004}))
    weights = results[0][1]
    assert weights == results[1][1]  # every rank used the same weights
    assert weights[0] == [0.5, 0.5]  # nothing measured yet
    assert all(abs(sum(w) - 1.0) < 1e-6 for w in weights)
    assert weights[-1][0] > 0.6 > 0.4 > weights[-1][1]  # the fast rank counts more
    x, y = dataset(g * steps)
    model = build(False)
    opt = phalanx.optim.SGD(model.parameters(), lr=LR)
    want = [state_of(model)]
    per = g // world
    for k in range(steps):
        opt.zero_grad()
        loss = 0
        for r in range(world):
            part = slice(k * g + r * per, k * g + (r + 1) * per)
            out = model(phalanx.tensor(x[part]))
            loss = loss + F.cross_entropy(out, phalanx.tensor(y[part])) * weights[k][r]
        loss.backward()
        opt.step()
        want.append(state_of(model))
    for rank, (history, _) in enumerate(results):
        assert_same(history, want, f"rank {rank}")


def test_balance_and_run_time_weighting_exclude_each_other():
    with pytest.raises(ValueError, match="cannot be combined with batch_weighting='run_time'"):
        DDP(Net(), balance=object(), batch_weighting="run_time")
    with pytest.raises(ValueError, match="'uniform', 'local_batch' or 'run_time', got 'speed'"):
        DDP(Net(), batch_weighting="speed")


def capped_ranks(rank, world, g, steps, caps, slow):
    x, y = dataset(g * steps)
    data = TensorDataset(phalanx.tensor(x), phalanx.tensor(y))
    sampler = BalancedDistributedSampler(data, g, seed=SEED)
    model = build(False)
    model.delay = slow.get(rank, 0.0)
    ddp = DDP(model, balance=sampler, balance_interval=2, max_samples_per_rank=caps[rank])
    sizes = []
    for xb, yb in DataLoader(data, batch_sampler=sampler):
        F.cross_entropy(ddp(xb), yb).backward()
        sizes.append(xb.shape[0])
    return sizes, ddp.balancer.metrics()


def test_max_samples_per_rank_is_enforced_at_once_and_kept():
    """Rank 0 (little memory) may hold 10 samples: its equal share of 16 is cut after the
    first step, and although rank 1 is the slow one, rank 0 never gets more than 10."""
    g, steps = 32, 10
    results = run_ranks("test_balance", "capped_ranks", 2, (g, steps, [10, None], {1: 0.004}))
    (s0, m0), (s1, _) = results
    # decided at the end of step 0, in force from the next step
    assert s0[0] == 16 and s0[1:] == [10] * (steps - 1), (s0, m0["changes"])
    assert s1[1:] == [22] * (steps - 1)
    assert m0["changes"] == [{"step": 1, "at_step": 1, "shares": [10, 22]}]


def bad_balance_arguments(rank, world):
    data = TensorDataset(phalanx.zeros(64, 3, 8, 8))
    sampler = BalancedDistributedSampler(data, 16)
    other = BalancedDistributedSampler(data, 16, num_replicas=3, rank=rank)
    messages = []
    for kwargs in (
        {"balance": sampler, "balance_interval": 0},
        {"balance": sampler, "balance_hysteresis": 1.5},
        {"balance": sampler, "max_samples_per_rank": 0},
        {"balance": other},
        {"balance": list(range(16))},
        {"balance": sampler, "min_samples_per_rank": 0},
        {"balance": sampler, "min_samples_per_rank": 5, "max_samples_per_rank": 4},
        {"min_samples_per_rank": 2},
        {"balance": sampler, "min_samples_per_rank": 9},
    ):
        try:
            DDP(build(False), **kwargs)
        except (TypeError, ValueError) as e:
            messages.append(str(e))
    return messages


def test_bad_balance_arguments_are_named():
    messages = run_ranks("test_balance", "bad_balance_arguments", 2)[1]
    assert len(messages) == 9, messages
    assert "balance_interval must be an int >= 1, got 0" in messages[0]
    assert "balance_hysteresis must be in [0, 1), got 1.5" in messages[1]
    assert "max_samples_per_rank must be a positive int or None, got 0" in messages[2]
    assert (
        "the sampler is for rank 1 of 3, the process group has this process as rank 1 of 2"
        in (messages[3])
    )
    assert "takes a phalanx.utils.data.BalancedDistributedSampler, got list" in messages[4]
    assert "min_samples_per_rank must be a positive int, got 0" in messages[5]
    assert "min_samples_per_rank=5 is above max_samples_per_rank=4" in messages[6]
    assert "min_samples_per_rank needs balance=" in messages[7]
    assert "needs a global batch of at least 18; the sampler's is 16" in messages[8]
