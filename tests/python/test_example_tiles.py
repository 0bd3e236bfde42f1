"""examples/tiny_yolo_tiles.py end to end under the launcher (small images, few steps): the
tiled layers of a 2x2 grid keep at most 0.35x of one device's activation memory per rank (the
issue's target), the hybrid (2 tile groups x 2 replicas, its tile groups' meetings measured
for the prediction, before and after the measured steps) and the planner's mode train."""

from __future__ import annotations

import json
import os

import pytest
from _spawn import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(nproc, *args, timeout=240):
    proc = run_python(
        ["-m", "phalanx.distributed.launch", "--nproc", str(nproc), "examples/tiny_yolo_tiles.py"]
        + ["--image-size", "96", "--steps", "2", "--warmup", "0", *args],
        timeout=timeout,
        cwd=ROOT,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = [ln for ln in proc.stdout.splitlines() if "{" in ln]
    assert lines, out
    return json.loads(lines[-1][lines[-1].index("{") :])


def test_tiles_2x2_keep_at_most_035_of_one_devices_activation_memory():
    one = run(1, "--mode", "single")
    tiles = run(4, "--mode", "tiles", "--grid", "2x2")
    assert tiles["grid"] == [2, 2] and tiles["output"] == "batch"
    for kept in tiles["front_kept_bytes"]:
        assert kept <= 0.35 * one["front_kept_bytes"][0], (kept, one["front_kept_bytes"])


def test_hybrid_and_planner_modes_train():
    hybrid = run(
        4, "--mode", "tiles", "--grid", "1x2", "--tiled-layers", "4", "--groups=", "--predict"
    )
    assert hybrid["data_parallel"] == 2 and hybrid["step_s"] > 0
    # the two tile groups' meetings measured at once, as the run meets, and predicted with
    assert hybrid["tile_meetings_s"] >= 0
    assert hybrid["predicted"]["tile_meetings_s"] == hybrid["tile_meetings_s"]
    # calibrated once before the measured steps and once after: the prediction is from the mean
    before, after = hybrid["predicted_before_after"]
    mean = (before["tile_meetings_s"] + after["tile_meetings_s"]) / 2
    assert hybrid["tile_meetings_s"] == pytest.approx(mean, rel=1e-9)
    # the tiled layers too are averaged between the two tile groups: every replica is equal
    assert len(set(hybrid["param_checksums"])) == 1, hybrid["param_checksums"]
    planned = run(2, "--mode", "plan", "--link-mbit", "1000", "--predict")
    assert planned["step_s"] > 0 and planned["predicted"]["step_s"] > 0
