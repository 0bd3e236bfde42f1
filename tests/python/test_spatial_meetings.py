"""A tile group's meetings measured on its ranks (issue 13): profile_tile_meetings replays a
tile step with a one-float all-reduce at each of its collectives; the planner takes that in
place of its meetings term and the message latencies inside the tile group."""

import pytest
from _spawn import run_ranks
from test_spatial_planner import TIMES, model

from phalanx.spatial import plan
from phalanx.spatial.planner import measure_sync, predict
from phalanx.spatial.tile_profile import profile_tile_meetings

SHAPE = (2, 3, 128, 128)
TILES = {"layers": 8, "groups": [4], "grid": (2, 2), "data_parallel": 1}


@pytest.mark.parametrize("world", [2, 4])
def test_a_replayed_step_meets_as_often_as_the_planner_counts(world):
    for counts in run_ranks("_spatial_meeting_cases", "meetings_counted", world, timeout=120):
        for held, counted in counts:
            assert held == counted


def test_the_measured_meetings_include_waiting_for_a_late_member():
    delay = 0.005
    results = run_ranks("_spatial_meeting_cases", "meetings_measured", 2, (delay,), timeout=120)
    seconds = {r[0] for r in results}
    assert len(seconds) == 1  # every rank returns the same number
    (value,) = seconds
    meetings = results[0][1]
    # every meeting waits for rank 1's delay; loopback and the replay add little on top
    assert meetings * delay * 0.9 <= value <= meetings * delay + 0.25
    assert all(r[2] for r in results)  # parameters, statistics and gradients as they were


def test_a_group_that_does_not_match_the_grid_is_refused():
    messages = run_ranks("_spatial_meeting_cases", "wrong_size", 2, timeout=120)
    assert messages == ["profile_tile_meetings: the group has 2 ranks, a 2x2 grid needs 4"] * 2


def test_without_ranks_there_is_nothing_to_measure():
    with pytest.raises(ValueError, match="needs the tile group's ranks"):
        profile_tile_meetings(model(), (4, 3, 32, 32), 8, (2, 1), [4])


def test_measured_meetings_replace_the_meetings_term_and_tile_latencies():
    a, b = 2e-3, 0.1
    shape = (4, 3, 128, 128)  # a batch of 4 over 4 ranks: the rest runs data-parallel
    # the link's bandwidth is all that is left of the tile group's messages
    fast = predict(model(), shape, TILES, 125e6, TIMES, latency=0.0, tile_meetings_s=0.05)
    slow = predict(model(), shape, TILES, 125e6, TIMES, latency=1e-3, tile_meetings_s=0.05)
    modelled = predict(model(), shape, TILES, 125e6, TIMES, latency=1e-3)
    # only the data-parallel ring of the rest (4 ranks: 2 x 3 messages) keeps its latency
    assert slow["comm_s"] - fast["comm_s"] == pytest.approx(6 * 1e-3)
    assert modelled["comm_s"] > slow["comm_s"] + 20 * 1e-3
    met = predict(model(), shape, TILES, 125e6, TIMES, sync=(a, b), tile_meetings_s=0.05)
    # 12 meetings, 11 in the tile group (measured); DDP's after the tiles: a + b x the rest
    assert met["syncs"] == 12 and met["tile_syncs"] == 11
    rest = met["compute_s"] - met["tile_front_s"]  # compute_scale 1: the front unscaled
    assert met["sync_s"] == pytest.approx(0.05 + a + b * rest)
    # a batch of 2 on a 2x2 grid: the whole map goes to every rank, the rest is replicated,
    # so no meeting is left outside the tile group
    full = predict(model(), SHAPE, TILES, 125e6, TIMES, sync=(a, b), tile_meetings_s=0.05)
    assert full["output"] == "full" and full["syncs"] == full["tile_syncs"]
    assert full["sync_s"] == pytest.approx(0.05)
    dp = {"data_parallel": 4}
    assert predict(model(), shape, dp, 125e6, TIMES, tile_meetings_s=9.0)[
        "sync_s"
    ] == pytest.approx(predict(model(), shape, dp, 125e6, TIMES)["sync_s"])


def test_plan_takes_measured_meetings_and_extends_them_to_groups_of_the_same_size(capsys):
    """A measure that returns (compute, meetings): costly meetings send the choice away
    from tiles; cheap ones keep tiles, and the table says which rows were measured."""
    args = (model(), SHAPE, 4, 1.25e9)
    calls = []

    def costly(config):
        calls.append(config)
        return 0.001, 10.0

    chose = plan(*args, layer_times=TIMES, tile_step=costly, measure_top=3, verbose=False)
    assert chose["layers"] == 0
    # once a group size is measured, every tiling with groups of that size looks as bad:
    # the next measured has another size
    sizes = [c["grid"][0] * c["grid"][1] for c in calls]
    assert len(set(sizes)) == len(sizes)

    chose = plan(*args, layer_times=TIMES, tile_step=lambda c: (0.001, 0.0), verbose=True)
    assert chose["layers"] > 0
    assert "tiles measured, meetings measured" in capsys.readouterr().out


def test_measure_sync_gives_every_rank_the_same_medians():
    results = run_ranks("_spatial_meeting_cases", "sync_measured", 2, timeout=120)
    assert results[0] == results[1]  # averaged over the ranks, then the same medians
    a, b, per_message = results[0]
    assert a >= 0 and b >= 0 and per_message > 0
    with pytest.raises(ValueError, match="repeats=0 must be at least 1"):
        measure_sync(repeats=0)
