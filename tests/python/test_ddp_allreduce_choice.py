"""DDP's automatic choice between the flat and the hierarchical all-reduce
(nn/parallel/_allreduce_choice.py): the rule on declared, undeclared and mixed switch groups
and rank orders; the same choice on every rank, from gathered declarations; exactness against
the flat all-reduce; and the overrides (allreduce=, register_comm_hook)."""

import numpy as np
import pytest
from _spawn import run_ranks

from phalanx.distributed._launch.hosts import parse_hosts
from phalanx.distributed._launch.plan import plan_ranks, rank_env
from phalanx.nn.parallel import _allreduce_choice as choice

MB = 1 << 20
GBIT, MBIT100 = 10**9, 10**8


def row(switch, link=GBIT, uplink=0, latency_ns=50_000):
    return [switch, link, uplink, latency_ns]


def test_no_declared_switch_is_flat():
    d = choice.decide([row(-1)] * 8, [4 * MB])
    assert d.algorithm == "flat" and "no rank declares a switch" in d.reason


def test_mixed_declarations_are_flat_and_name_the_silent_ranks():
    rows = [row(i % 2, uplink=MBIT100) for i in range(8)]
    rows[3] = row(-1, uplink=MBIT100)
    d = choice.decide(rows, [4 * MB])
    assert d.algorithm == "flat" and "rank(s) [3] declare no switch" in d.reason


def test_one_switch_is_flat():
    assert choice.decide([row(0)] * 4, [4 * MB]).algorithm == "flat"


def test_ranks_listed_by_switch_stay_flat_even_on_a_slow_uplink():
    # docs/scale.md: bcube already sends one rank's worth over the uplink (measured 1.08x).
    d = choice.decide([row(r // 4, uplink=MBIT100) for r in range(8)], [4 * MB])
    assert d.algorithm == "flat" and "listed by switch" in d.reason
    assert d.hierarchical_s > d.flat_s


def test_interleaved_ranks_on_a_slow_uplink_go_hierarchical():
    d = choice.decide([row(r % 2, uplink=MBIT100) for r in range(8)], [MB, 4 * MB])
    assert d.algorithm == "hierarchical" and "not listed by switch" in d.reason
    assert d.switches == [0, 1] * 4
    assert d.hierarchical_s < 0.5 * d.flat_s  # measured 0.33


def test_interleaved_ranks_without_a_declared_uplink_stay_flat():
    # An undeclared uplink is no bottleneck: the extra stages cost more than they save (the
    # measured unshaped uplink: hierarchical 2x slower, docs/scale.md).
    assert choice.decide([row(r % 2) for r in range(8)], [4 * MB]).algorithm == "flat"


def test_the_slowest_declared_uplink_counts_whoever_declares_it():
    rows = [row(r % 2) for r in range(8)]
    rows[5] = row(1, uplink=MBIT100)
    assert choice.decide(rows, [4 * MB]).algorithm == "hierarchical"


def test_unequal_groups_are_decided_without_error():
    d = choice.decide([row(s, uplink=MBIT100) for s in [0, 1, 0, 1, 1]], [4 * MB])
    assert d.algorithm == "hierarchical" and d.switches == [0, 1, 0, 1, 1]


def test_local_row_reads_the_environment(monkeypatch):
    monkeypatch.delenv("PHALANX_SWITCH", raising=False)
    monkeypatch.delenv("PHALANX_LINK", raising=False)
    monkeypatch.delenv("PHALANX_UPLINK", raising=False)
    monkeypatch.delenv("PHALANX_LINK_LATENCY_US", raising=False)
    assert choice.local_row() == [-1, GBIT, 0, 50_000]
    monkeypatch.setenv("PHALANX_SWITCH", "3")
    monkeypatch.setenv("PHALANX_LINK", "100mbit")
    monkeypatch.setenv("PHALANX_UPLINK", "10mbit")
    monkeypatch.setenv("PHALANX_LINK_LATENCY_US", "200")
    assert choice.local_row() == [3, MBIT100, 10**7, 200_000]


@pytest.mark.parametrize(
    "name, value",
    [
        ("PHALANX_SWITCH", "left"),
        ("PHALANX_LINK", "fast"),
        ("PHALANX_UPLINK", "0mbit"),
        ("PHALANX_LINK_LATENCY_US", "-3"),
    ],
)
def test_bad_link_figures_are_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name}={value!r}"):
        choice.local_row()


def test_bad_allreduce_option_is_refused_before_any_collective():
    import phalanx.nn as nn
    from phalanx.nn.parallel import DistributedDataParallel

    with pytest.raises(ValueError, match="allreduce must be 'auto', 'flat' or 'hierarchical'"):
        DistributedDataParallel(nn.Linear(2, 2), allreduce="tree")


def test_hostfile_link_fields_reach_the_ranks():
    entries = parse_hosts("a:2 switch=0 link=1gbit uplink=100mbit latency_us=80\nb switch=1\n")
    specs = plan_ranks(None, entries)

    class Args:
        group_world_size, job_id, token, env = 2, "j", "t", {}

    envs = [rank_env(Args, s, 3, ("10.0.0.1", 29500)) for s in specs]
    assert [e.get("PHALANX_UPLINK") for e in envs] == ["100mbit", "100mbit", None]
    assert envs[0]["PHALANX_LINK"] == "1gbit" and envs[1]["PHALANX_LINK_LATENCY_US"] == "80"
    with pytest.raises(ValueError, match="uplink must be a rate like '100mbit'.*'slow'"):
        parse_hosts("a uplink=slow\n")
    with pytest.raises(ValueError, match="latency_us must be a non-negative number"):
        parse_hosts("a latency_us=x\n")


# -- through real ranks -------------------------------------------------------------------


def _declare(rank, switches, uplink):
    import os

    if switches[rank] is None:
        os.environ.pop("PHALANX_SWITCH", None)
    else:
        os.environ["PHALANX_SWITCH"] = str(switches[rank])  # as the launcher sets it
    os.environ["PHALANX_UPLINK"] = uplink


def _net():
    import phalanx
    import phalanx.nn as nn

    phalanx.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5))


def _steps(ddp, net, rank, steps=3):
    import phalanx
    import phalanx.nn.functional as F

    opt = phalanx.optim.SGD(net.parameters(), lr=0.1)
    rng = np.random.default_rng(rank)
    for _ in range(steps):
        x = phalanx.from_numpy(rng.standard_normal((8, 20), dtype=np.float32))
        y = phalanx.from_numpy(rng.integers(0, 5, size=8).astype(np.int64))
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in net.parameters()]


def train(rank, world, allreduce, switches, uplink):
    from phalanx.nn.parallel import DistributedDataParallel

    _declare(rank, switches, uplink)
    net = _net()
    ddp = DistributedDataParallel(
        net, bucket_cap_mb=0.004, first_bucket_cap_mb=0.001, allreduce=allreduce
    )
    d = ddp.allreduce_decision
    params = _steps(ddp, net, rank)
    return d.algorithm, d.reason, ddp.hierarchy is not None, params


INTERLEAVED = [0, 1, 0, 1]


def test_auto_goes_hierarchical_on_every_rank_and_trains_like_flat():
    flat = run_ranks(__name__, "train", 4, ("flat", INTERLEAVED, "10mbit"), timeout=120)
    auto = run_ranks(__name__, "train", 4, ("auto", INTERLEAVED, "10mbit"), timeout=120)
    assert {a[0] for a in flat} == {"flat"}
    assert {(a[0], a[1], a[2]) for a in auto} == {
        ("hierarchical", auto[0][1], True)
    }  # one decision, every rank
    for rank in range(4):
        for a, b in zip(flat[rank][3], auto[rank][3]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(auto[0][3], auto[rank][3]):
            np.testing.assert_array_equal(a, b)


def overrides(rank, world):
    import phalanx.distributed as dist
    from phalanx.distributed.algorithms.ddp_comm_hooks import allreduce_hook
    from phalanx.nn.parallel import DistributedDataParallel

    out = {}
    # One rank declares no switch: flat everywhere, though the others' uplink is slow.
    _declare(rank, [0, 1, None], "10mbit")
    net = _net()
    d = DistributedDataParallel(net).allreduce_decision
    out["mixed"] = (d.algorithm, d.reason)
    _declare(rank, [0, 1, 0], "10mbit")
    net = _net()
    out["forced flat"] = DistributedDataParallel(net, allreduce="flat").allreduce_decision.algorithm
    # The user's hook replaces the automatic hierarchical choice.
    net = _net()
    ddp = DistributedDataParallel(net)
    out["auto"] = ddp.allreduce_decision.algorithm
    calls = []

    def counting(state, bucket):
        calls.append(bucket.index)
        return allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, counting)
    out["hook"] = (ddp.allreduce_decision.algorithm, ddp.hierarchy)
    _steps(ddp, net, rank, steps=1)
    out["hook calls"] = len(calls)
    # Forced hierarchical without declarations works (one switch) and refuses a hook.
    _declare(rank, [None] * 3, "10mbit")
    net = _net()
    ddp = DistributedDataParallel(net, allreduce="hierarchical")
    out["forced"] = (ddp.allreduce_decision.algorithm, ddp.hierarchy.groups)
    try:
        ddp.register_comm_hook(None, allreduce_hook)
    except RuntimeError as e:
        out["refused"] = str(e)
    # An elastic generation change (the world re-formed without a joiner): flat until the
    # choice is made again, and training goes on.
    _declare(rank, [0, 1, 0], "10mbit")
    net = _net()
    ddp = DistributedDataParallel(net)
    before = ddp.allreduce_decision.algorithm
    dist._state.namespace = ("elastic", "pg", 1, "sub")
    ddp._rebind_to_default_group()
    out["rebind"] = (before, ddp.allreduce_decision.algorithm, ddp.hierarchy)
    out["after rebind"] = _steps(ddp, net, rank, steps=1)
    return out


def test_overrides_and_mixed_declarations():
    outs = run_ranks(__name__, "overrides", 3, timeout=120)
    for out in outs:
        assert out["mixed"] == ("flat", "rank(s) [2] declare no switch (PHALANX_SWITCH); all must")
        assert out["forced flat"] == "flat"
        assert out["auto"] == "hierarchical"
        assert out["hook"] == ("hook", None) and out["hook calls"] > 0
        assert out["forced"] == ("hierarchical", [[0, 1, 2]])
        assert "allreduce='hierarchical'" in out["refused"]
        assert out["rebind"] == ("hierarchical", "flat", None)
        for a, b in zip(outs[0]["after rebind"], out["after rebind"]):
            np.testing.assert_array_equal(a, b)
