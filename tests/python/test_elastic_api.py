"""phalanx.distributed.elastic in one process (a one-rank world): commit/restore round trips,
the sampler and learning-rate fitting, and bad input named clearly. The multi-rank behaviour
(losses, fencing, joins) is in test_elastic.py and test_elastic_launch.py."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _spawn import free_port

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
from phalanx.distributed import elastic
from phalanx.utils.data import BalancedDistributedSampler


@pytest.fixture
def world():
    port = free_port()
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=0,
        world_size=1,
        timeout=10,
        heartbeat_interval=0.2,
        heartbeat_timeout=2,
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def parts():
    phalanx.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    opt = phalanx.optim.Adam(model.parameters(), lr=0.01)
    sampler = BalancedDistributedSampler(list(range(40)), 8, shuffle=True, seed=3)
    return model, opt, sampler


def train_steps(model, opt, sampler, n):
    it = iter(sampler)
    for _ in range(n):
        idx = next(it)
        x = phalanx.tensor(np.arange(len(idx) * 3, dtype=np.float32).reshape(-1, 3) / 10)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def values(model, opt):
    out = [p.detach().numpy().copy() for p in model.parameters()]
    out += [b.numpy().copy() for b in model.buffers()]
    for st in opt.state_dict()["state"].values():
        out += [v.numpy().copy() if isinstance(v, phalanx.Tensor) else v for v in st.values()]
    return out


def test_state_needs_an_initialized_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        elastic.State(model=None)


def test_commit_then_restore_brings_everything_back(world):
    model, opt, sampler = parts()
    state = elastic.State(model=model, optimizer=opt, sampler=sampler, step=0, note=[1])
    train_steps(model, opt, sampler, 2)
    state.step, state.note = 2, [1, 2]
    state.commit()
    saved, position = values(model, opt), sampler.state_dict()
    train_steps(model, opt, sampler, 1)
    state.step, state.note = 3, [9]
    assert not all(np.array_equal(a, b) for a, b in zip(saved, values(model, opt)))
    state.restore()
    assert state.step == 2 and state.note == [1, 2]
    after = values(model, opt)
    assert len(after) == len(saved)
    assert all(np.array_equal(a, b) for a, b in zip(saved, after))
    assert sampler.state_dict() == position
    state.sync()  # one rank: a no-op that must not fail
    assert all(np.array_equal(a, b) for a, b in zip(saved, values(model, opt)))


def test_shrink_scales_the_global_batch_and_learning_rate(world):
    """Built in a 1-rank world as if the job had started with 4 ranks: shrinking to 1 rank
    quarters the global batch and the learning rate (the linear scaling rule)."""
    model, opt, sampler = parts()
    state = elastic.State(model=model, optimizer=opt, sampler=sampler)
    state._base = {"world": 4, "global_batch": 8, "lrs": [0.01]}
    state.global_batch = "shrink"
    state._fit_world()
    assert sampler.global_batch_size == 2 and sampler.shares == [2]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0025)
    state.global_batch = "keep"
    state._base = {"world": 1, "global_batch": 8, "lrs": [0.01]}
    state._fit_world()  # keep: the batch stays as it is now
    assert sampler.global_batch_size == 2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"commit": 1}, ValueError, r"extra name\(s\) \['commit'\] are reserved"),
        ({"_hidden": 1}, ValueError, r"\['_hidden'\] are reserved"),
    ],
)
def test_bad_extras_are_named(world, kwargs, error, match):
    with pytest.raises(error, match=match):
        elastic.State(**kwargs)


def test_bad_run_arguments_are_named(world):
    with pytest.raises(ValueError, match="global_batch must be one of .* got 'grow'"):
        elastic.run(global_batch="grow")
    with pytest.raises(TypeError, match="decorates a function, got int"):
        elastic.run(3)

    @elastic.run
    def train(state):
        return state

    with pytest.raises(TypeError, match="must be a phalanx.distributed.elastic.State, got dict"):
        train({})
    with pytest.raises(ValueError, match="min_nproc must be >= 1, got 0"):
        elastic.run(min_nproc=0)(lambda s: s)(elastic.State())


def test_a_users_error_is_not_taken_for_a_lost_rank(world):
    state = elastic.State(step=0)
    calls = []

    @elastic.run
    def train(state):
        calls.append(1)
        raise ValueError("a bug in train()")

    with pytest.raises(ValueError, match="a bug"):
        train(state)

    @elastic.run
    def train_runtime(state):
        calls.append(2)
        raise RuntimeError("not a collective")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="not a collective"):
        train_runtime(state)
    assert time.monotonic() - started < 5  # a short wait for a watchdog verdict, no more
    assert calls == [1, 2]  # never retried


def test_without_failure_detection_run_refuses():
    port = free_port()
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=0,
        world_size=1,
        timeout=10,
        heartbeat_interval=0,
    )
    try:
        with pytest.raises(ValueError, match="needs failure detection"):
            elastic.run(lambda s: s)(elastic.State())
    finally:
        dist.destroy_process_group()
