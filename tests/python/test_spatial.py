"""TileParallel against the unpartitioned module on 2, 4 and 6 local ranks: outputs, input
gradient, every parameter gradient and BatchNorm's running statistics, over several SGD steps
(tests/python/_spatial_cases.py). Each job runs many cases so the ranks start once."""

from __future__ import annotations

import time

import pytest
from _spawn import run_ranks

SMALL, ODD = (13, 15), (57, 83)

# (kind, input size, grid, group boundaries, output)
TWO_RANKS = [
    (kind, size, grid, groups, out)
    for kind in ("plain", "grouped", "same")
    for size, grid in ((SMALL, (1, 2)), (ODD, (2, 1)))
    for groups in (None, [3])
    for out in ("full", "batch")
]
FOUR_RANKS = [
    ("plain", ODD, (2, 2), None, "full"),
    ("plain", SMALL, (2, 2), [2, 4], "batch"),
    ("grouped", ODD, (2, 2), [3], "full"),
    ("grouped", SMALL, (2, 2), None, "batch"),
    ("same", ODD, (2, 2), [2], "batch"),
]
SIX_RANKS = [
    ("plain", ODD, (2, 3), [3], "full"),
    ("grouped", SMALL, (2, 3), None, "batch"),
]
# BatchNorm statistics are per replica under data parallelism, so the hybrid's reference (one
# module on the union of the replicas' batches) holds only for stacks without BatchNorm.
HYBRID = [("same", ODD, (1, 2), [2], "full"), ("same", SMALL, (2, 1), None, "batch")]


def _timed(world, func, args=()):
    start = time.monotonic()
    results = run_ranks("_spatial_cases", func, world, args, timeout=240)
    return results, time.monotonic() - start


def test_two_ranks_grids_1x2_2x1_every_layer_kind():
    results, _ = _timed(2, "cases_on_world", (TWO_RANKS,))
    assert results == [True, True]


def test_four_ranks_grid_2x2():
    results, _ = _timed(4, "cases_on_world", (FOUR_RANKS,))
    assert results == [True] * 4


def test_six_ranks_grid_2x3():
    results, _ = _timed(6, "cases_on_world", (SIX_RANKS,))
    assert results == [True] * 6


def test_hybrid_two_tile_groups_data_parallel_between():
    results, _ = _timed(4, "hybrid", (HYBRID,))
    assert results == [True] * 4


def test_dropout_uses_one_mask_over_the_whole_map():
    results, _ = _timed(2, "dropout_mask")
    assert results == [True, True]


def test_different_inputs_on_the_ranks_are_refused_on_every_rank():
    results, _ = _timed(2, "different_inputs")
    for msg in results:
        assert "got different inputs" in msg, msg


def test_group_size_must_be_rows_times_cols_and_this_rank_a_member():
    results, _ = _timed(2, "wrong_group_size")
    for size_msg, _ in results:
        assert "grid 2x2 needs a group of 4 ranks, the process group has 2" in size_msg
    assert results[0][1] == "member"
    assert "this rank is not a member of process_group" in results[1][1], results[1][1]


@pytest.mark.parametrize("world, grid, share", [(2, (1, 2), 0.6), (4, (2, 2), 0.35)])
def test_tile_activation_memory_is_a_share_of_the_map(world, grid, share):
    results, _ = _timed(world, "activation_memory", (grid,))
    for one, tiled in results:
        assert tiled <= share * one, (one, tiled, tiled / one)
