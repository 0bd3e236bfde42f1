"""phalanx.spatial.plan: its choice moves the way it should — towards tiles (and data
parallelism) on fast links, away from tiles as links slow down, back to tiles when memory
shrinks; the candidate table is printed; bad arguments are refused. Layer times are given,
so the choices do not depend on this machine's load."""

import pytest

import phalanx.nn as nn
from phalanx.spatial import plan, spatial_prefix

TIMES = [0.05, 0.01, 0.01, 0.01, 0.08, 0.01, 0.01, 0.01, 0.08, 0.01, 0.001, 0.0, 0.001]


def model():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def choose(bandwidth, memory=None):
    return plan(model(), (2, 3, 128, 128), 4, bandwidth, memory, layer_times=TIMES, verbose=False)


def test_the_spatial_prefix_stops_at_the_first_layer_tiles_cannot_hold():
    assert spatial_prefix(model()) == 10


def test_fast_link_tiles_slow_link_data_parallel():
    fast = choose(125e6)  # 1 Gbit/s
    slow = choose(1.25e6)  # 10 Mbit/s
    assert fast["tile_group_size"] > 1 and fast["layers"] > 0
    assert slow["tile_group_size"] == 1 and slow["layers"] == 0
    assert fast["predicted_step_s"] < slow["predicted_step_s"]


def test_less_memory_brings_tiles_back_on_a_slow_link():
    roomy = choose(1.25e6)
    tight = choose(1.25e6, memory=4e6)
    assert roomy["predicted_peak_bytes"] > 4e6
    assert tight["tile_group_size"] > 1 and tight["predicted_peak_bytes"] <= 4e6
    with pytest.raises(MemoryError, match="no configuration fits in 1000000.0 bytes"):
        choose(1.25e6, memory=1e6)


def test_step_time_never_falls_as_the_link_slows():
    steps = [choose(bw)["predicted_step_s"] for bw in (1e9, 125e6, 12.5e6, 1.25e6)]
    assert steps == sorted(steps)


def test_prints_the_candidates(capsys):
    best = plan(model(), (2, 3, 64, 64), 2, 125e6, layer_times=TIMES)
    out = capsys.readouterr().out
    assert "tiled layers" in out and "step ms" in out and "peak MiB" in out
    assert f"{best['predicted_step_s'] * 1e3:.2f}" in out


def test_profiling_run_measures_every_layer():
    best = plan(model(), (2, 3, 32, 32), 2, 125e6, verbose=False)
    assert best["predicted_step_s"] > 0


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="link_bandwidth=0 must be positive"):
        plan(model(), (2, 3, 32, 32), 2, 0, layer_times=TIMES)
    with pytest.raises(ValueError, match="layer_times has 2 entries for 13 layers"):
        plan(model(), (2, 3, 32, 32), 2, 1e6, layer_times=[0.1, 0.1])
    with pytest.raises(TypeError, match="must be an nn.Sequential"):
        plan(nn.Linear(2, 2), (2, 2), 2, 1e6)
