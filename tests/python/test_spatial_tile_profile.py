"""phalanx.spatial.tile_profile: a tile step timed on one process as one member of a tile
group whose collectives move nothing (SilentGroup), and predict() taking that measured time
in place of the per-layer model of the tiled layers."""

import numpy as np
import pytest
from test_spatial_planner import TIMES, model

import phalanx
import phalanx.nn as nn
from phalanx.spatial import TileParallel, plan
from phalanx.spatial.planner import predict
from phalanx.spatial.tile_profile import SilentGroup, profile_tile_step


def no_batch_norm():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(8, 8, 3, padding=1)
    )


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_a_silent_member_computes_its_own_tile_and_receives_zeros(index):
    phalanx.manual_seed(3)
    net = no_batch_norm()
    x = phalanx.randn(2, 3, 21, 18)
    whole = net(x).detach().numpy()
    tiles = TileParallel(net, (2, 2), SilentGroup(4, index), output="full")
    y = tiles(x).detach().numpy()
    (r0, r1), (c0, c1) = tiles.plans(x.shape[2:])[-1][index].output_region
    np.testing.assert_allclose(y[:, :, r0:r1, c0:c1], whole[:, :, r0:r1, c0:c1], atol=1e-5)
    outside = np.ones(y.shape, bool)
    outside[:, :, r0:r1, c0:c1] = False
    assert not y[outside].any()  # what the other members would have sent


def test_profile_tile_step_times_the_slowest_member_and_leaves_the_model_alone():
    phalanx.manual_seed(4)
    net = model()
    before = {k: v.clone().numpy() for k, v in net.state_dict().items()}
    seconds = profile_tile_step(net, (4, 3, 32, 32), 8, (2, 1), [4], data_parallel=2, repeats=1)
    assert seconds > 0
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    assert all(p.grad is None for p in net.parameters())


def test_profile_tile_step_refuses_a_batch_the_replicas_cannot_share():
    with pytest.raises(ValueError, match="data_parallel=3 must divide the batch of 4"):
        profile_tile_step(model(), (4, 3, 32, 32), 8, (2, 1), data_parallel=3)
    with pytest.raises(ValueError, match="index 4 is not in a group of 4"):
        SilentGroup(4, 4)


def test_predict_uses_the_measured_tile_step_in_place_of_the_modelled_one():
    config = {"layers": 8, "groups": [4], "grid": (2, 2), "data_parallel": 1}
    shape = (2, 3, 128, 128)
    a = predict(model(), shape, config, 1e9, TIMES, compute_scale=1.5, tile_step_s=0.01)
    b = predict(model(), shape, config, 1e9, TIMES, compute_scale=1.5, tile_step_s=0.05)
    assert b["compute_s"] - a["compute_s"] == pytest.approx(1.5 * 0.04)
    modelled = predict(model(), shape, config, 1e9, TIMES, compute_scale=1.5)
    assert modelled["compute_s"] != pytest.approx(a["compute_s"])
    # nothing tiled: a measured tile step has nothing to replace
    dp = {"data_parallel": 2}
    assert predict(model(), shape, dp, 1e9, TIMES, tile_step_s=9.0)["compute_s"] == pytest.approx(
        predict(model(), shape, dp, 1e9, TIMES)["compute_s"]
    )


def test_plan_measures_its_best_tiling_candidates_and_ranks_again(capsys):
    """On a fast link the model prefers tiles; a measured tile step that is slow (the
    unmeasured tilings scaled by the same measured/modelled ratio) sends the choice to data
    parallelism after one measurement, a fast one keeps tiles."""
    calls = []

    def slow(config):
        calls.append(config)
        return 10.0

    def fast(config):
        return 1e-4

    args = (model(), (2, 3, 128, 128), 4, 125e6)
    modelled = plan(*args, layer_times=TIMES, verbose=False)
    assert modelled["tile_group_size"] > 1
    chose_slow = plan(*args, layer_times=TIMES, tile_step=slow, measure_top=3, verbose=True)
    assert chose_slow["tile_group_size"] == 1 and chose_slow["layers"] == 0
    assert len(calls) == 1 and calls[0]["layers"] and calls[0]["tile_group_size"] > 1
    assert "(as measured)" in capsys.readouterr().out  # the scaled tilings are marked
    chose_fast = plan(*args, layer_times=TIMES, tile_step=fast, verbose=False)
    assert chose_fast["tile_group_size"] > 1
    assert chose_fast["predicted_step_s"] < modelled["predicted_step_s"]
