"""The planner's calibration terms (issue 13): each layer's fixed time per call does not
shrink on a tile or a smaller share of the batch (layer_fixed, profile_fixed), a measured
training step scales the compute (compute_scale), and profile() sums to a plain pass."""

import pytest
from test_spatial_planner import TIMES, model

import phalanx
import phalanx.nn as nn
from phalanx.autograd import Function
from phalanx.spatial import plan
from phalanx.spatial.planner import predict, profile, profile_fixed

SHAPE = (2, 3, 128, 128)
TILES = {"layers": 8, "groups": [], "grid": (2, 2), "data_parallel": 1}


def test_fixed_time_per_call_does_not_shrink_on_tiles():
    free = predict(model(), SHAPE, TILES, 125e6, TIMES)
    fixed = predict(model(), SHAPE, TILES, 125e6, TIMES, layer_fixed=TIMES)
    one = predict(model(), SHAPE, {"data_parallel": 1}, 125e6, TIMES)
    # every layer's time fixed: a tile costs what the whole map costs; none: much less
    assert fixed["compute_s"] == pytest.approx(one["compute_s"])
    assert free["compute_s"] < 0.6 * one["compute_s"]
    half = predict(model(), SHAPE, TILES, 125e6, TIMES, layer_fixed=[t / 2 for t in TIMES])
    assert half["compute_s"] == pytest.approx((free["compute_s"] + fixed["compute_s"]) / 2)


def test_compute_scale_multiplies_compute_not_messages():
    base = predict(model(), SHAPE, TILES, 125e6, TIMES)
    scaled = predict(model(), SHAPE, TILES, 125e6, TIMES, compute_scale=1.5)
    assert scaled["compute_s"] == pytest.approx(1.5 * base["compute_s"])
    assert scaled["comm_s"] == pytest.approx(base["comm_s"])


def test_fixed_costs_move_the_plan_away_from_small_tiles():
    """With most of each layer's time fixed per call, splitting the map saves little and
    the messages cost the same: the planner stops tiling."""
    args = (model(), SHAPE, 4, 1.25e9)
    assert plan(*args, layer_times=TIMES, verbose=False)["layers"] > 0
    fixed = [0.95 * t for t in TIMES]
    assert plan(*args, layer_times=TIMES, layer_fixed=fixed, verbose=False)["layers"] == 0


def test_layer_fixed_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="layer_fixed has 2 entries for 13 layers"):
        plan(model(), SHAPE, 2, 1e6, layer_times=TIMES, layer_fixed=[0.1, 0.1])


def test_profiles_are_per_layer_and_fixed_parts_within_each_time():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
    times = profile(net, (4, 3, 32, 32))
    fixed = profile_fixed(net, (4, 3, 32, 32), times)
    assert len(times) == len(fixed) == 3
    assert all(t > 0 for t in times)
    assert all(0.0 <= a <= t for a, t in zip(fixed, times))
    assert len(profile_fixed(net, (1, 3, 32, 32), profile(net, (1, 3, 32, 32)))) == 3


def test_tiled_times_replace_the_layer_times_of_tiled_layers_only():
    tiles = {"layers": 8, "groups": [4], "grid": (2, 1), "data_parallel": 1}
    dp = {"data_parallel": 2}
    slower = [t * 3 if isinstance(m, nn.BatchNorm2d) else t for t, m in zip(TIMES, model())]
    base = predict(model(), SHAPE, tiles, 125e6, TIMES)
    tiled = predict(model(), SHAPE, tiles, 125e6, TIMES, tiled_times=slower)
    # BatchNorms at layers 1 and 5 (0.01 s each on the whole map), both tiled
    assert tiled["compute_s"] > base["compute_s"]
    assert predict(model(), SHAPE, dp, 125e6, TIMES, tiled_times=slower)["compute_s"] == (
        pytest.approx(predict(model(), SHAPE, dp, 125e6, TIMES)["compute_s"])
    )
    # a one-rank "tile group" runs the fused layers: the tiled times do not apply
    one = {"layers": 8, "groups": [4], "grid": (1, 1), "data_parallel": 1}
    assert predict(model(), SHAPE, one, 125e6, TIMES, tiled_times=slower)["compute_s"] == (
        pytest.approx(predict(model(), SHAPE, one, 125e6, TIMES)["compute_s"])
    )


def test_profile_tiled_retimes_batch_norm_only():
    from phalanx.spatial.planner import profile_tiled

    net = model()
    times = [0.01 * (i + 1) for i in range(len(net))]
    tiled = profile_tiled(net, (2, 3, 64, 64), times)
    for i, m in enumerate(net):
        if isinstance(m, nn.BatchNorm2d):
            # TiledBatchNorm is Python over several ops; the fused kernel is one call
            assert tiled[i] > times[i]
        else:
            assert tiled[i] == times[i]


class _Scale(Function):
    """y = x * w; records, at each backward, whether the input's gradient was asked for."""

    asked = []

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        _Scale.asked.append(ctx.needs_input_grad[0])
        gx = g * w if ctx.needs_input_grad[0] else None
        return gx, (g * x).sum().reshape(1)


class _ScaleLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(phalanx.ones(1))

    def forward(self, x):
        return _Scale.apply(x, self.w)


def test_profiles_do_not_ask_the_first_layer_for_its_input_gradient():
    """A batch in training takes no gradient: the first layer's backward is its weights'
    only, so a profile that asked for the input's too would time work training never does
    (a 416 px Tiny-YOLOv2 profile came out 7-16% above a training step)."""
    _Scale.asked.clear()
    net = nn.Sequential(_ScaleLayer(), nn.Conv2d(3, 4, 3, padding=1), _ScaleLayer())
    times = profile(net, (2, 3, 16, 16), repeats=2)
    assert len(times) == 3 and all(t >= 0 for t in times)
    # per pass the last layer's backward runs first, for its input (the convolution's
    # output, which needs it), then the first layer's, never for the input
    passes = len(_Scale.asked) // 2
    assert passes == 5  # 3 timed by layer (one a warm-up) and 2 plain
    assert _Scale.asked == [True, False] * passes
