"""Rank functions for tests/python/test_spatial_meetings.py (run by _spawn.run_ranks): a
tile group's meetings replayed on real ranks (phalanx.spatial.tile_profile)."""

from __future__ import annotations

import time

import numpy as np
from test_spatial_planner import model

import phalanx
from phalanx import nn
from phalanx.spatial import TileParallel
from phalanx.spatial import tile_profile as tp
from phalanx.spatial.planner import Candidate, tile_sync_points

SHAPE = (4, 3, 32, 32)


def _grid(world):
    return (2, 1) if world == 2 else (2, 2)


def meetings_counted(rank, world):
    """Per configuration: the meetings a MeetingGroup member holds in one forward+backward,
    and the planner's count of the tile group's meetings."""
    net = model()
    grid = _grid(world)
    out = []
    for layers, groups, output in ((8, [4], "batch"), (8, [], "full"), (8, [2, 4], "batch")):
        front = nn.Sequential(*list(net)[:layers])
        member = tp.MeetingGroup(None, world, rank)
        x = phalanx.randn(*SHAPE)
        TileParallel(front, grid, member, output, groups)(x).sum().backward()
        cand = Candidate(layers, groups, grid, 1)
        cand.output = output
        out.append((member.meetings, tile_sync_points(net, cand)))
    return out


def meetings_measured(rank, world, delay_s):
    """profile_tile_meetings with rank 1 late by `delay_s` at every meeting (the others
    wait for it); the model must come back unchanged. Returns (seconds, meetings, model
    unchanged)."""
    net = model()
    before = [v.clone().numpy() for v in net.state_dict().values()]
    real_meet = tp.MeetingGroup._meet

    def late(self):
        if rank == 1:
            time.sleep(delay_s)
        real_meet(self)

    tp.MeetingGroup._meet = late
    try:
        seconds = tp.profile_tile_meetings(net, SHAPE, 8, _grid(world), [4], repeats=3)
    finally:
        tp.MeetingGroup._meet = real_meet
    cand = Candidate(8, [4], _grid(world), 1)
    cand.output = "batch"
    same = all(
        np.array_equal(v.numpy(), b) for v, b in zip(net.state_dict().values(), before)
    ) and all(p.grad is None for p in net.parameters())
    return seconds, tile_sync_points(net, cand), same


def wrong_size(rank, world):
    try:
        tp.profile_tile_meetings(model(), SHAPE, 8, (2, 2), [4])
    except ValueError as e:
        return str(e)
    return "no error"


def sync_measured(rank, world):
    """measure_sync on every rank at once, three times over: what each rank got."""
    from phalanx.spatial.planner import measure_sync

    (a, b), per_message = measure_sync(slices=(0.001, 0.004), rounds=3, repeats=3)
    return a, b, per_message
