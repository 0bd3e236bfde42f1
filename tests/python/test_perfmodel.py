"""phalanx.perfmodel: the alpha-beta costs of the all-reduce algorithms, the fit of a link from
measured times, and the DDP step with bucket overlap, stragglers and compression. (Its
validation against measured runs is benchmarks/perfmodel_validate.py, docs/scale.md.)"""

import math

import pytest

from phalanx import _C
from phalanx import perfmodel as pm

MB = 1 << 20
LINK = pm.Link(alpha_s=100e-6, beta_s_per_byte=8 / 1e9)  # 1 Gbit/s, 100 us a round


def test_ring_and_bcube_move_the_same_bytes_in_different_numbers_of_rounds():
    n, p = 8 * MB, 8
    moved = 2 * (p - 1) / p * n * LINK.beta_s_per_byte
    assert pm.allreduce_time(n, p, LINK, "ring") == pytest.approx(14 * 100e-6 + moved)
    assert pm.allreduce_time(n, p, LINK, "bcube") == pytest.approx(6 * 100e-6 + moved)
    # Not a power of two: bcube rounds up to the next one.
    assert pm.allreduce_time(n, 6, LINK, "bcube") == pytest.approx(
        6 * 100e-6 + 2 * 5 / 6 * n * LINK.beta_s_per_byte
    )
    assert pm.allreduce_time(n, 1, LINK) == 0.0
    assert pm.allreduce_time(0, 8, LINK) == 0.0


@pytest.mark.parametrize("nbytes", [4, 64 << 10, 16 * MB, 200 * MB, 2000 * MB])
@pytest.mark.parametrize("world", [2, 3, 8, 138])
def test_auto_is_the_choice_the_cpp_all_reduce_makes(nbytes, world):
    assert pm.choose_algorithm(nbytes, world) == _C.dist.choose_allreduce_algorithm(nbytes, world)


def test_fit_link_recovers_alpha_and_beta():
    truth = pm.Link(alpha_s=250e-6, beta_s_per_byte=8 / 95e6)
    sizes = [4, 64 << 10, MB, 4 * MB, 16 * MB]
    for world, algo in ((2, "auto"), (8, "bcube"), (8, "ring")):
        samples = [(b, pm.allreduce_time(b, world, truth, algo)) for b in sizes]
        fitted = pm.fit_link(samples, world=world, algorithm=algo)
        assert fitted.alpha_s == pytest.approx(truth.alpha_s, rel=1e-3)
        assert fitted.beta_s_per_byte == pytest.approx(truth.beta_s_per_byte, rel=1e-3)
    # A token bucket's burst lets a mid-sized message through at full speed: the large
    # messages still set the bandwidth (measured on a 1 Gbit/s tbf link, 2 ranks).
    shaped = [(4, 0.15e-3), (262144, 0.47e-3), (1048576, 7.61e-3), (4194304, 33.11e-3)]
    fitted = pm.fit_link(shaped)
    assert 950 < fitted.bandwidth_mbit < 1100, fitted
    assert 50e-6 < fitted.alpha_s < 100e-6, fitted
    assert pm.Link.from_rate("100mbit").bandwidth_mbit == pytest.approx(100)
    with pytest.raises(ValueError, match="at least two different sizes"):
        pm.fit_link([(MB, 0.01), (MB, 0.02)])


def profile(comm_heavy: bool) -> pm.ModelProfile:
    return pm.ModelProfile.uniform(
        "m",
        param_bytes=(100 if comm_heavy else 4) * MB,
        forward_s=0.1,
        backward_s=0.2,
        optimizer_s=0.01,
        batch=32,
    )


def test_buckets_follow_ddp_caps_and_backward_readiness():
    m = profile(comm_heavy=True)
    assert [b / MB for b in m.buckets] == [1, 25, 25, 25, 24]
    assert m.bucket_backward_s[-1] == pytest.approx(0.2)
    assert m.param_bytes == 100 * MB


def test_overlap_hides_small_all_reduces_and_exposes_large_ones():
    small = pm.step_time(profile(False), 8, LINK)
    assert small.comm_exposed_s < small.comm_s  # most of it hidden behind backward
    assert small.step_s < 0.31 + small.comm_s
    no_overlap = pm.step_time(profile(False), 8, LINK, overlap=False)
    assert no_overlap.step_s == pytest.approx(0.31 + no_overlap.comm_s)

    big = pm.step_time(profile(True), 8, LINK)
    # Communication-bound: the step ends when the last bucket, sent after the others, is done.
    assert big.step_s > big.comm_s
    assert big.images_per_s == pytest.approx(8 * 32 / big.step_s)
    assert 0 < big.scaling_efficiency < 1


def test_stragglers_and_compression():
    base = pm.step_time(profile(True), 8, LINK)
    slow = pm.step_time(profile(True), 8, LINK, straggler=1.5)
    assert slow.compute_s == pytest.approx(0.1 * 1.5 + 0.2 * 1.5 + 0.01)
    assert slow.step_s > base.step_s
    half = pm.step_time(profile(True), 8, LINK, compression=0.5)
    assert half.comm_s == pytest.approx(base.comm_s / 2, rel=0.01)


def test_host_work_per_byte_adds_to_each_bucket_and_not_on_one_rank():
    m = profile(comm_heavy=False)
    base = pm.step_time(m, 8, LINK, overlap=False)
    busy = pm.step_time(m, 8, LINK, overlap=False, cpu_s_per_byte=5e-9)
    assert busy.step_s - base.step_s == pytest.approx(5e-9 * m.param_bytes)
    alone = pm.step_time(m, 1, LINK, cpu_s_per_byte=5e-9)
    assert alone.step_s == pytest.approx(m.compute_s)
    with pytest.raises(ValueError, match="cpu_s_per_byte must be >= 0"):
        pm.step_time(m, 8, LINK, cpu_s_per_byte=-1.0)


def test_wifi_is_one_channel_shared_by_all_phones():
    one = pm.Link.shared_medium("867mbit", 1, efficiency=0.5)
    thirty = pm.Link.shared_medium("867mbit", 30, efficiency=0.5)
    assert one.bandwidth_mbit == pytest.approx(867 * 0.5 / 2)  # up to the AP and down
    assert thirty.bandwidth_mbit == pytest.approx(one.bandwidth_mbit / 30)
    with pytest.raises(ValueError, match="relay must be >= 1"):
        pm.Link.shared_medium("867mbit", 4, relay=0)


def test_flat_and_hierarchical_over_switches_match_the_emulated_rack():
    """benchmarks/hierarchical_bench.py, 5 Dec 2026: 8 phones, 2 switches x 4, 1 Gbit/s
    ports, 4 MiB float32; rank 0's medians in seconds (docs/scale.md)."""
    port = pm.Link.from_rate("1gbit", 50e-6, efficiency=0.94)
    slow = pm.Link.from_rate("100mbit", 50e-6, efficiency=0.94)
    unshaped = pm.Link(50e-6, 0.0)
    n = 4 * MB
    measured = [  # (uplink, ranks ordered by switch, flat, hierarchical)
        (slow, True, 0.420, 0.453),
        (slow, False, 1.385, 0.455),
        (unshaped, True, 0.0656, 0.119),
        (unshaped, False, 0.0639, 0.128),
    ]
    for up, by_switch, flat, hier in measured:
        f = pm.allreduce_time(
            n, 8, port, "auto", group_size=4, uplink=up, ranks_by_switch=by_switch
        )
        h = pm.allreduce_time(n, 8, port, "hierarchical", group_size=4, uplink=up)
        assert f == pytest.approx(flat, rel=0.2), (up, by_switch, f, flat)
        assert h == pytest.approx(hier, rel=0.2), (up, by_switch, h, hier)


def test_hierarchical_beats_a_flat_ring_but_not_bcube_across_a_slow_uplink():
    uplink = pm.Link(alpha_s=100e-6, beta_s_per_byte=8 / 1e8)  # 100 Mbit/s between switches
    n = 25 * MB
    ring = pm.allreduce_time(n, 64, LINK, "ring", group_size=16, uplink=uplink)
    bcube = pm.allreduce_time(n, 64, LINK, "bcube", group_size=16, uplink=uplink)
    hier = pm.allreduce_time(n, 64, LINK, "hierarchical", group_size=16, uplink=uplink)
    # The ring sends one stream's 2(p-1)/p of the message over the uplink, the leaders
    # 2(g-1)/g; bcube with ranks ordered by switch crosses with as little as the leaders do.
    assert hier < ring
    assert bcube <= hier
    # Ranks not ordered by switch: bcube's first, largest rounds cross; hierarchical wins.
    mixed = pm.allreduce_time(
        n, 64, LINK, "bcube", group_size=16, uplink=uplink, ranks_by_switch=False
    )
    assert hier < mixed
    # On one switch nothing crosses an uplink: flat is the plain cost.
    assert pm.allreduce_time(n, 16, LINK, "bcube", group_size=16) == pm.allreduce_time(
        n, 16, LINK, "bcube"
    )


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="algorithm='tree'"):
        pm.allreduce_time(MB, 4, LINK, "tree")
    with pytest.raises(ValueError, match="world must be an int >= 1, got 0"):
        pm.allreduce_time(MB, 0, LINK)
    with pytest.raises(ValueError, match="group_size=3 must divide world=8"):
        pm.allreduce_time(MB, 8, LINK, "hierarchical", group_size=3)
    with pytest.raises(ValueError, match="needs group_size"):
        pm.allreduce_time(MB, 8, LINK, "hierarchical")
    with pytest.raises(ValueError, match="alpha_s must be >= 0"):
        pm.Link(-1.0, 0.0)
    with pytest.raises(ValueError, match="rate='fast'"):
        pm.Link.from_rate("fast")
    with pytest.raises(ValueError, match="compression must be within"):
        pm.step_time(profile(False), 2, LINK, compression=0)
    with pytest.raises(ValueError, match="forward_s must be >= 0"):
        pm.ModelProfile("m", -1.0, 0.0, 0.0, 1)
    assert math.isinf(pm.Link(0.0, 0.0).bandwidth_mbit)
