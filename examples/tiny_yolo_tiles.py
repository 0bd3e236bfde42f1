"""Tiny-YOLOv2's backbone trained with its first layers split into tiles over the ranks and the
rest data-parallel: the mobile-and-edge-clusters recipe (arXiv 2409.09083) in phalanx.

    phalanx launch --nproc 4 examples/tiny_yolo_tiles.py --mode tiles --grid 2x2   # 4 local ranks
    phalanx cluster run --phones 4 --link 100mbit examples/tiny_yolo_tiles.py --mode plan
    python examples/tiny_yolo_tiles.py --mode single --steps 3                    # one device

Modes:
  single   the whole model on one device (rank 0 only), the reference for time and memory;
  dp       pure data parallelism: every rank its share of the batch, DDP;
  tiles    the first --tiled-layers layers as tiles on a --grid over all ranks (output='batch':
           the rest data-parallel inside the group, DDP);
  plan     phalanx.spatial.plan picks layers, grouping, grid and replicas for --link-mbit and
           --mem-mib, then trains that (tile groups as new_group sub-groups, DDP across).

Data are synthetic (random images, random class labels) with a classification head on the
backbone (global average pool + linear): step time and memory are what this example measures.
Rank 0 prints one JSON line: mode, configuration, mean step time, and for every rank the
memory of the first layers' forward (phalanx.memory_stats(): the peak while they run and what
they keep for backward).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.nn.parallel import DistributedDataParallel as DDP
from phalanx.spatial import TileParallel, plan
from phalanx.spatial.tile_profile import profile_tile_meetings, profile_tile_step


def tiny_yolo_backbone(width: float = 1.0, classes: int = 20) -> nn.Sequential:
    """Tiny-YOLOv2: 3x3 conv + BatchNorm + LeakyReLU(0.1) blocks with 2x2 max pools halving
    the map five times (16 ... 1024 channels at width 1), then a classification head."""
    layers, c_in = [], 3
    for i, c in enumerate((16, 32, 64, 128, 256, 512)):
        c_out = max(4, int(c * width))
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
        layers += [nn.LeakyReLU(0.1)]
        if i < 5:
            layers.append(nn.MaxPool2d(2, 2))
        c_in = c_out
    c_out = max(4, int(1024 * width))
    layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
    layers += [nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_out, classes)]
    return nn.Sequential(*layers)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("single", "dp", "tiles", "plan"), default="tiles")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=4, help="global batch")
    p.add_argument("--width", type=float, default=0.25, help="channel width multiplier")
    p.add_argument("--tiled-layers", type=int, default=8, help="leading layers split (tiles)")
    p.add_argument("--groups", default="4", help="fused-group boundaries, e.g. 4 or 4,8 or ''")
    p.add_argument("--grid", default="2x2", help="rows x cols of the tile grid (tiles)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1, help="steps left out of the median")
    p.add_argument("--link-mbit", type=float, default=100.0, help="plan: link rate")
    p.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        help="plan: per-message latency (default: measured, tiny all-reduces between the ranks)",
    )
    p.add_argument("--mem-mib", type=float, default=None, help="plan: memory per device")
    p.add_argument(
        "--predict", action="store_true", help="add the cost model's prediction for the run"
    )
    return p.parse_args(argv)


def build(args, world, rank):
    """(model to step, parameters, the tiled part or None, the rank's batch slice)."""
    phalanx.manual_seed(0)
    net = tiny_yolo_backbone(args.width)
    shape = (args.batch, 3, args.image_size, args.image_size)
    if args.mode == "single" or world == 1:
        front = nn.Sequential(*list(net)[: args.tiled_layers])
        model = nn.Sequential(front, nn.Sequential(*list(net)[args.tiled_layers :]))
        return model, front, (0, args.batch), {"mode": "single", "layers": args.tiled_layers}
    if args.mode == "dp":
        cfg = {"layers": 0, "groups": [], "grid": (1, 1), "data_parallel": min(world, args.batch)}
        return hybrid(net, cfg, args.batch, world, rank)
    if args.mode == "tiles":
        rows, cols = (int(v) for v in args.grid.split("x"))
        cfg = {
            "layers": args.tiled_layers,
            "groups": [int(g) for g in args.groups.split(",") if g],
            "grid": (rows, cols),
            "data_parallel": world // (rows * cols),
        }
    else:
        times, fixed, tiled = layer_times(net, shape, world)
        latency, sync = message_latency(args, world)
        cfg = plan(
            net,
            shape,
            world,
            args.link_mbit * 1e6 / 8,
            None if args.mem_mib is None else args.mem_mib * 2**20,
            latency=latency,
            layer_times=times,
            layer_fixed=fixed,
            compute_scale=compute_scale(args.width, shape, world),
            sync=sync,
            tiled_times=tiled,
            # the best tiling candidates' tile steps measured on every rank, averaged
            tile_step=lambda config: measured_tile_step(net, shape, config, world),
            verbose=rank == 0,
        )
    return hybrid(net, cfg, args.batch, world, rank)


def layer_times(net, shape, world):
    """Per-layer forward+backward seconds, their fixed parts and the times as a tile group
    runs the layers (profile, profile_fixed, profile_tiled), profiled on every rank and
    averaged, so every rank plans (and predicts) from the same numbers."""
    planner = phalanx.spatial.planner
    times = planner.profile(net, shape)
    fixed = planner.profile_fixed(net, shape, times)
    tiled = planner.profile_tiled(net, shape, times)
    every = phalanx.tensor(times + fixed + tiled)
    if world > 1:
        dist.all_reduce(every)
    every = [t / world for t in every.tolist()]
    k = len(times)
    return every[:k], every[k : 2 * k], every[2 * k :]


def compute_scale(width, shape, world, steps: int = 5) -> float:
    """A training step of this script on one device (its loss, optimizer and Python
    included) over a plain forward+backward of the same network (what the profile's layer
    times add up to): the planner's compute_scale. The two are timed in turns, so a drift of
    the machine's speed between the profile and this measurement does not enter the ratio
    (timed apart, against the profile, it came out 0.77-1.27 on the emulated phones, and
    scaled the measured tile steps by as much). Every rank measures on its own device at
    once (the load a run sees), the ranks average."""
    phalanx.manual_seed(1)
    model = tiny_yolo_backbone(width)
    opt = phalanx.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = phalanx.randn(*shape)
    y = phalanx.tensor(np.zeros(shape[0], dtype=np.int64))
    passes, seconds = [], []
    for step in range(steps + 1):
        start = time.perf_counter()
        model(x).sum().backward()  # as profile() times a pass: no loss, no optimizer
        plain = time.perf_counter() - start
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step:  # the first creates oneDNN's primitives
            passes.append(plain)
            seconds.append(time.perf_counter() - start)
    scale = phalanx.tensor([float(np.median(seconds)) / float(np.median(passes))])
    if world > 1:
        dist.all_reduce(scale)
    return scale.item() / world


def measured_tile_step(net, shape, config, world):
    """(compute, meetings) of the tiled layers' forward+backward (phalanx.spatial.tile_profile):
    the slowest member's computation with messages left out, measured on every rank at once
    and averaged; and what the tile group's meetings add, measured on every tile group of
    consecutive ranks at once (as the run lays them out) and averaged. None when nothing is
    tiled."""
    grid = tuple(config.get("grid", (1, 1)))
    if not config.get("layers") or grid[0] * grid[1] == 1:
        return None
    layers, groups, d = config["layers"], config.get("groups", []), config["data_parallel"]
    seconds = profile_tile_step(net, shape, layers, grid, groups, d)
    group = tile_group(grid[0] * grid[1], world)
    meetings = 0.0
    if group is not None:
        meetings = profile_tile_meetings(net, shape, layers, grid, groups, d, group)
    every = phalanx.tensor([seconds, meetings, float(group is not None)])
    if world > 1:
        dist.all_reduce(every)
    seconds, meetings, members = every.tolist()
    return seconds / world, meetings / members


_TILE_GROUPS = {}


def tile_group(g, world):
    """This rank's group of g consecutive ranks (None: a rank left over), created once per g
    by every rank in the same order, as new_group requires."""
    if g not in _TILE_GROUPS:
        _TILE_GROUPS[g] = [
            dist.new_group(list(range(i * g, (i + 1) * g))) for i in range(world // g)
        ]
    rank = dist.get_rank()
    return _TILE_GROUPS[g][rank // g] if rank < g * (world // g) else None


def message_latency(args, world):
    """(seconds per message, (a, b) of the meetings term): both measured between all ranks
    by phalanx.spatial.planner.measure_sync -- tiny all-reduces back to back for the link's
    part, and compute slices of 2 and 20 ms (the span of a tile step's stretches between
    meetings here) each followed by a tiny all-reduce, minus both alone, for what a meeting
    costs inside a step: the ranks arrive apart and wait for the last (a descheduled rank,
    a CPU quota's period). --latency-ms replaces the per-message part only."""
    if world <= 1 or not dist.is_initialized():
        return (5e-4 if args.latency_ms is None else args.latency_ms * 1e-3), (0.0, 0.0)
    sync, latency = phalanx.spatial.planner.measure_sync(slices=(0.002, 0.02))
    if args.latency_ms is not None:
        latency = args.latency_ms * 1e-3
    return latency, sync


def hybrid(net, cfg, batch, world, rank):
    """Tile groups of consecutive ranks (new_group), data parallelism across them. Ranks the
    configuration leaves idle (g * d < world, a batch too small for every rank) sit out."""
    k, grid = cfg["layers"], tuple(cfg["grid"])
    g, d = grid[0] * grid[1], cfg["data_parallel"]
    if k == 0 or g == 1:
        g = 1
    active = dist.new_group(list(range(g * d)))  # every rank calls new_group, in order
    mine = tile_group(g, world) if g > 1 else None  # this rank's tile group
    # The same tile in every tile group: its copies of the tiled layers are averaged there, as
    # DistributedDataParallel does for the replicas of the rest.
    peers = [dist.new_group(list(range(j, g * d, g))) for j in range(g)] if g > 1 and d > 1 else []
    if rank >= g * d:
        return None, None, (0, 0), dict(cfg, mode="idle")
    replica = phalanx.spatial.split(batch, d)[rank // g]
    if g == 1:
        # one replica has nothing to average: the model itself, as on one device (DDP over a
        # group of one still copied every gradient into its buckets and back)
        model = net if d == 1 else DDP(net, process_group=active)
        return model, None, replica, dict(cfg, mode="dp")
    out = "batch" if (replica[1] - replica[0]) >= g else "full"
    tiles = TileParallel(
        nn.Sequential(*list(net)[:k]),
        grid,
        process_group=mine,
        output=out,
        groups=cfg["groups"],
    )
    front = DDP(tiles, process_group=peers[rank % g]) if peers else tiles
    # The rest: data-parallel over the active ranks (replicated inside a group for "full").
    rest = DDP(nn.Sequential(*list(net)[k:]), process_group=active)
    return nn.Sequential(front, rest), tiles, replica, dict(cfg, mode="tiles", output=out)


def calibrate(args, result) -> dict:
    """What the planner's prediction for this run's configuration is made from, measured on
    every rank at once: the layer profile, the message latency and meetings term, the
    compute scale, and the tiled layers' own step. result["ranks"]: the run's ranks (1 for
    one device alone)."""
    n = result["ranks"]
    phalanx.manual_seed(0)
    net = tiny_yolo_backbone(args.width)
    shape = (args.batch, 3, args.image_size, args.image_size)
    times, fixed, tiled = layer_times(net, shape, n)
    latency, sync = message_latency(args, n)
    scale = compute_scale(args.width, shape, n)
    measured = measured_tile_step(net, shape, _config(args, result), n)
    tile_step, tile_meetings = measured if measured else (None, None)
    return {
        "tile_step_s": tile_step,
        "tile_meetings_s": tile_meetings,
        "layer_times": times,
        "layer_fixed": fixed,
        "tiled_times": tiled,
        "latency_s": latency,
        "sync": list(sync),
        "compute_scale": scale,
    }


def _config(args, result) -> dict:
    if args.mode == "single":
        return {"data_parallel": 1}
    return {k: result[k] for k in ("layers", "groups", "grid", "data_parallel") if k in result}


def predict(args, result, cal) -> dict:
    """The planner's prediction for this run's configuration from calibration `cal`."""
    phalanx.manual_seed(0)
    net = tiny_yolo_backbone(args.width)
    return phalanx.spatial.planner.predict(
        net,
        (args.batch, 3, args.image_size, args.image_size),
        _config(args, result),
        args.link_mbit * 1e6 / 8,
        cal["layer_times"],
        latency=cal["latency_s"],
        layer_fixed=cal["layer_fixed"],
        compute_scale=cal["compute_scale"],
        sync=tuple(cal["sync"]),
        tiled_times=cal["tiled_times"],
        tile_step_s=cal["tile_step_s"],
        tile_meetings_s=cal["tile_meetings_s"],
    )


def _mean(a, b):
    """The element-wise mean of two calibrations (numbers inside dicts and lists)."""
    if isinstance(a, dict):
        return {k: _mean(a[k], b[k]) for k in a}
    if isinstance(a, (list, tuple)):
        return [_mean(x, y) for x, y in zip(a, b, strict=True)]
    if a is None or b is None:
        return None
    return (a + b) / 2


def main(argv=None) -> dict:
    args = parse_args(argv)
    if "RANK" in os.environ and not dist.is_initialized():
        dist.init_process_group("gloo")
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    if args.mode == "single" and rank != 0:
        return {}
    model, tiles, (b0, b1), cfg = build(args, world if args.mode != "single" else 1, rank)
    steps = args.steps if model is not None else 0  # a rank the configuration leaves idle
    configuration = {"ranks": world if args.mode != "single" else 1, **cfg}
    calibrated_before = calibrate(args, configuration) if args.predict else None
    opt = phalanx.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if steps else None
    rng = np.random.default_rng(0)
    times, front_peak, front_kept = [], 0, 0
    for step in range(steps):
        x = rng.standard_normal((args.batch, 3, args.image_size, args.image_size)).astype(
            np.float32
        )
        y = rng.integers(0, 20, size=args.batch).astype(np.int64)
        start = time.perf_counter()
        if tiles is not None:
            # every rank of a tile group gets its replica's whole batch
            xt = phalanx.tensor(x[b0:b1])  # the input itself is not the layers' memory
            before = phalanx.memory_stats()["allocated_bytes"]
            phalanx.reset_peak_memory_stats()
            feats = model[0](xt)  # the tiles, averaged across tile groups by DDP
            stats = phalanx.memory_stats()
            front_peak = max(front_peak, stats["peak_allocated_bytes"] - before)
            front_kept = max(front_kept, stats["allocated_bytes"] - before)
            s0, s1 = tiles.local_batch(b1 - b0) if hasattr(tiles, "local_batch") else (0, b1 - b0)
            lo, hi = b0 + s0, b0 + s1
            logits = model[1](feats)
        else:
            lo, hi = b0, b1
            logits = model(phalanx.tensor(x[lo:hi]))
        loss = F.cross_entropy(logits, phalanx.tensor(y[lo:hi]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    # A sum of every parameter: the replicas (every rank, tiles included) must stay equal.
    checksum = (
        sum(float(p.detach().numpy().astype(np.float64).sum()) for p in model.parameters())
        if steps
        else 0.0
    )
    stats = phalanx.tensor([float(front_peak), float(front_kept), checksum], dtype=phalanx.float64)
    if dist.is_initialized() and args.mode != "single":
        all_stats = [phalanx.zeros(3, dtype=phalanx.float64) for _ in range(world)]
        dist.all_gather(all_stats, stats)
    else:
        all_stats = [stats]
    result = {
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "image_size": args.image_size,
        "batch": args.batch,
        "ranks": configuration["ranks"],
        # the median: one step descheduled by another job on a shared machine is not the
        # configuration's cost
        "step_s": float(np.median(times)) if times else None,
        # per rank: the peak while the first `layers` layers ran forward, and what they kept
        # for backward (their activations and output), above what was allocated before
        "front_peak_bytes": [int(a[0].item()) for a in all_stats],
        "front_kept_bytes": [int(a[1].item()) for a in all_stats],
        "param_checksums": [a[2].item() for a in all_stats],
    }
    if args.predict:
        # the calibrations bracket the measured steps (one before them, one after): their mean
        # is what the predictions use, so a drift of the machine's speed during the run enters
        # both sides alike
        calibrations = [calibrated_before, calibrate(args, result)]
        cal = _mean(*calibrations)
        result["predicted"] = predict(args, result, cal)
        result["predicted_before_after"] = [predict(args, result, c) for c in calibrations]
        result.update(cal)
    if rank == 0:
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
