"""Hierarchical all-reduce (phalanx.distributed.algorithms.hierarchical): the hostfile's
`switch=` reaches the ranks as PHALANX_SWITCH, and the three-stage all-reduce (inside each
switch, among the leaders, broadcast back) gives the flat sum, also as DDP's hook."""

import numpy as np
import pytest
from _spawn import run_ranks

from phalanx.distributed._launch.hosts import parse_hosts
from phalanx.distributed._launch.plan import plan_ranks, rank_env


def sums(rank, world, switches):
    import os

    import phalanx
    from phalanx.distributed.algorithms.hierarchical import Hierarchy

    os.environ["PHALANX_SWITCH"] = switches[rank]  # as the launcher sets it from the hostfile
    hier = Hierarchy.from_env()
    x = phalanx.from_numpy(np.arange(1000, dtype=np.float32) * (rank + 1) + rank)
    hier.all_reduce(x)
    return os.environ.get("PHALANX_SWITCH"), hier.groups, hier.leaders, x.numpy().copy()


def train(rank, world, hierarchical):
    import phalanx
    import phalanx.nn as nn
    import phalanx.nn.functional as F
    from phalanx.distributed.algorithms.hierarchical import Hierarchy, hierarchical_hook
    from phalanx.nn.parallel import DistributedDataParallel

    phalanx.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5))
    # first bucket tiny: several buckets, each through the hook
    ddp = DistributedDataParallel(net, bucket_cap_mb=0.004, first_bucket_cap_mb=0.001)
    if hierarchical:
        ddp.register_comm_hook(Hierarchy([0, 0, 1, 1, 1]), hierarchical_hook)
    opt = phalanx.optim.SGD(net.parameters(), lr=0.1)
    rng = np.random.default_rng(rank)
    for _ in range(3):
        x = phalanx.from_numpy(rng.standard_normal((8, 20), dtype=np.float32))
        y = phalanx.from_numpy(rng.integers(0, 5, size=8).astype(np.int64))
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in net.parameters()]


def test_switch_groups_sum_like_a_flat_all_reduce():
    world = 5
    switches = ["1", "0", "1", "7", "0"]  # leaders: ranks 1 (switch 0), 0 (1), 3 (7)
    results = run_ranks("test_hierarchical", "sums", world, (switches,), timeout=120)
    want = sum(np.arange(1000, dtype=np.float32) * (r + 1) + r for r in range(world))
    for rank, (switch, groups, leaders, got) in enumerate(results):
        assert switch == switches[rank]
        assert groups == [[1, 4], [0, 2], [3]] and leaders == [1, 0, 3]
        np.testing.assert_array_equal(got, want)


def test_ddp_with_the_hierarchical_hook_trains_like_flat_ddp():
    flat = run_ranks("test_hierarchical", "train", 5, (False,), timeout=120)
    hier = run_ranks("test_hierarchical", "train", 5, (True,), timeout=120)
    for rank in range(5):
        for a, b in zip(flat[rank], hier[rank]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for p0, p4 in zip(hier[0], hier[4]):
        np.testing.assert_array_equal(p0, p4)


def test_hostfile_switch_field_sets_phalanx_switch():
    entries = parse_hosts("a:2 switch=0\nb switch=3\nc\n")
    assert [e.switch for e in entries] == [0, 3, None]
    specs = plan_ranks(None, entries)

    class Args:
        group_world_size, job_id, token, env = 3, "j", "t", {}

    envs = [rank_env(Args, s, 4, ("10.0.0.1", 29500)) for s in specs]
    assert [e.get("PHALANX_SWITCH") for e in envs] == ["0", "0", "3", None]
    with pytest.raises(ValueError, match="switch must be a non-negative integer, got '-1'"):
        parse_hosts("a switch=-1\n")


def test_bad_switch_variable_is_named(monkeypatch):
    from phalanx.distributed.algorithms import hierarchical

    monkeypatch.setenv("PHALANX_SWITCH", "left")
    with pytest.raises(ValueError, match="PHALANX_SWITCH='left' must be a non-negative"):
        hierarchical._switch_from_env()
