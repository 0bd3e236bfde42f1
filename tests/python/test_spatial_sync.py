"""The planner's meetings term (issue 13): the blocking synchronisations a step has
(sync_points), the per-meeting cost fitted from a calibration's timings (sync_cost), and
how the term enters the step time and the choice. Synthetic numbers: no ranks, no load."""

import pytest
from test_spatial_planner import TIMES, model

from phalanx.spatial import plan
from phalanx.spatial.planner import Candidate, predict, sync_cost, sync_points

SHAPE = (2, 3, 128, 128)  # model(): BatchNorm at layers 1 and 5, poolings at 3 and 7


def cand(layers, groups, grid, d, output="batch"):
    c = Candidate(layers, groups, grid, d)
    c.output = output
    return c


@pytest.mark.parametrize(
    "config, expected",
    [
        # 2 BatchNorms x 3 + one boundary x 2 + all-to-all x 2 + tile gradients + DDP
        ((8, [4], (2, 1), 1, "batch"), 12),
        # two boundaries: 2 more
        ((8, [4, 6], (2, 1), 1, "batch"), 14),
        # output="full": the all-gather's backward is local, the rest is replicated (d = 1)
        ((8, [], (2, 2), 1, "full"), 8),
        # one BatchNorm, then the rest data-parallel over 2 replicas x 2 ranks; the tiled
        # layers are averaged between the 2 tile groups: one more
        ((2, [], (1, 2), 2, "batch"), 8),
        # pure data parallelism: one gradient all-reduce; one device: none
        ((0, [], (1, 1), 4, "batch"), 1),
        ((0, [], (1, 1), 1, "batch"), 0),
    ],
)
def test_meetings_are_counted_per_configuration(config, expected):
    assert sync_points(model(), cand(*config)) == expected


def test_a_one_rank_tile_group_has_no_meetings_of_its_own():
    # a 1x1 grid over 8 layers is one device: only DDP's all-reduce across the replicas
    assert sync_points(model(), cand(8, [4], (1, 1), 2)) == 1


def test_sync_cost_recovers_a_and_b_from_synthetic_timings():
    a, b, link, rounds = 1.5e-3, 0.12, 2e-4, 12
    samples = []
    for slice_s in (0.002, 0.02):
        alone = rounds * slice_s
        with_ = alone + rounds * (link + a + b * slice_s)
        samples.append((slice_s, alone, with_, rounds))
    got_a, got_b = sync_cost(samples, link)
    assert got_a == pytest.approx(a)
    assert got_b == pytest.approx(b)


def test_sync_cost_one_sample_is_a_constant_and_nothing_goes_negative():
    assert sync_cost([(0.01, 0.10, 0.13, 10)], 1e-3) == pytest.approx((2e-3, 0.0))
    # collectives slower back to back than inside the loop: no negative meeting cost
    assert sync_cost([(0.01, 0.10, 0.10, 10), (0.02, 0.2, 0.2, 10)], 1e-3) == (0.0, 0.0)
    # the extra falls with the slice: the slope is clamped, the intercept is their mean
    a, b = sync_cost([(0.002, 0.0, 0.04, 10), (0.02, 0.0, 0.02, 10)], 0.0)
    assert b == 0.0 and a == pytest.approx(3e-3)
    with pytest.raises(ValueError, match="no samples"):
        sync_cost([], 0.0)


def test_the_term_adds_a_per_meeting_and_b_times_compute():
    tiles = {"layers": 8, "groups": [4], "grid": (2, 1), "data_parallel": 1}
    base = predict(model(), SHAPE, tiles, 125e6, TIMES)
    a, b = 2e-3, 0.1
    met = predict(model(), SHAPE, tiles, 125e6, TIMES, sync=(a, b))
    assert met["syncs"] == 12
    assert met["sync_s"] == pytest.approx(12 * a + b * base["compute_s"])
    assert met["step_s"] == pytest.approx(base["step_s"] + met["sync_s"])
    assert met["compute_s"] == pytest.approx(base["compute_s"])
    one = predict(model(), SHAPE, {"data_parallel": 1}, 125e6, TIMES, sync=(a, b))
    assert one["sync_s"] == 0.0  # one device never waits for anyone


def test_costly_meetings_move_the_plan_from_tiles_to_data_parallelism():
    """On a fast link the tiles win on messages; when every meeting costs 20 ms, the
    configuration with the fewest meetings (data parallelism: one) wins."""
    args = (model(), SHAPE, 4, 1.25e9)
    assert plan(*args, layer_times=TIMES, verbose=False)["layers"] > 0
    slow = plan(*args, layer_times=TIMES, sync=(0.02, 0.0), verbose=False)
    assert slow["layers"] == 0 and slow["data_parallel"] > 1
