"""plan(): how many leading layers to split into tiles, where the fused groups end, the grid,
and how many tile groups train data-parallel, from a cost model.

The model (docs/spatial.md has the derivation):
  compute   each layer's measured forward+backward time (a short profiling run on one
            device), split into a fixed part per call (launching kernels, Python: measured
            by profiling a one-sample batch too, `profile_fixed`) and a part that scales with
            the area a tile computes, halo included, over the whole map (the tile with the
            largest area sets the pace); the rest of the network on the per-rank share of
            the batch likewise; all of it times `compute_scale`, a training step measured
            on one device over the profile's forward+backward (what a profile of the layers
            leaves out: the loss, the optimizer, the step's Python; 1 when not measured);
  messages  latency + bytes / bandwidth for each: the halo at every group boundary and the
            all-to-all to batch parallelism (forward and backward), BatchNorm statistics
            (two small all-reduces each way), the gradient all-reduces (ring: 2(n-1)/n of the
            bytes) inside a tile group and across the data-parallel replicas;
  meetings  every blocking synchronisation of a step (sync_points: BatchNorm statistics,
            halo exchanges, the all-to-all, the gradient all-reduces) costs `a`, plus, once
            per step that has any, `b` x the step's compute: ranks that computed apart
            arrive at a meeting at different moments (one descheduled, throttled by its
            CPU quota, slower by chance) and everyone waits for the last. (a, b) are
            measured on the ranks by timing compute slices separated by tiny collectives
            (measure_sync, sync_cost), not fitted to step times. For a tiling candidate
            the planner measures (plan's tile_step), its tile group's meetings can be
            measured instead (tile_profile.profile_tile_meetings: its own step replayed
            with a tiny collective at each meeting): that replaces the meetings term and
            the message latencies inside the tile group;
  memory    parameters x 3 (weights, gradients, optimizer state) + the activations a rank
            keeps: its tiles' outputs, and the rest of the network on its share of the batch.
Communication is not assumed to overlap computation (the phones' cores do both).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import phalanx

from .. import nn
from .geometry import plan_tiles
from .layers import describe

FLOAT = 4  # bytes


@dataclass
class Candidate:
    layers: int  # leading layers split into tiles (0: pure data parallelism)
    groups: list = field(default_factory=list)  # fused-group boundaries inside those layers
    grid: tuple = (1, 1)
    data_parallel: int = 1
    step_s: float = 0.0
    peak_bytes: int = 0
    fits: bool = True
    parts: dict = field(default_factory=dict)  # the terms of step_s, for the table
    output: str = "batch"  # "full" when a replica's batch is smaller than the tile group

    def config(self) -> dict:
        """Ready to use: TileParallel(model[:layers], grid, groups=groups, output='batch')."""
        return {
            "layers": self.layers,
            "groups": list(self.groups),
            "grid": tuple(self.grid),
            "tile_group_size": self.grid[0] * self.grid[1],
            "data_parallel": self.data_parallel,
            "output": self.output,
            "predicted_step_s": self.step_s,
            "predicted_peak_bytes": self.peak_bytes,
        }


def spatial_prefix(model) -> int:
    """How many leading layers of `model` a tile group can hold."""
    n = 0
    for i, m in enumerate(model):
        try:
            describe(m, i)
        except TypeError:
            break
        n += 1
    return n


def profile(model, input_shape, repeats: int = 3) -> list[float]:
    """Seconds of forward+backward of each layer of `model` on an input of `input_shape`,
    measured inside whole training passes (forward: around each layer; backward: between the
    gradient hooks of consecutive layer outputs), the median of `repeats` after one warm-up,
    scaled so that they add up to the median of `repeats` plain passes (no hooks, no clock
    per layer: the instrumentation's own cost is not the layers'). The input takes no
    gradient, as a batch in training does: the first layer's backward is its weight's
    gradient only (with the input's too, a 416 px profile came out 7-16% above a training
    step, and the measured tile step was scaled down by that)."""
    times = _layer_times(model, input_shape, repeats)
    plain = []
    for _ in range(repeats):
        x = phalanx.randn(*input_shape)
        start = time.perf_counter()
        model(x).sum().backward()
        plain.append(time.perf_counter() - start)
    total = sum(times)
    scale = _median(plain) / total if total > 0 else 1.0
    return [t * scale for t in times]


def profile_fixed(model, input_shape, full_times, repeats: int = 3) -> list[float]:
    """The part of each layer's time that does not shrink with its work (launching kernels,
    Python): profiled again on one sample (or, for a one-sample batch, half the height and
    width) and fitted as `fixed + per_unit * work` through the two points, clamped to
    [0, the small run's time]. `full_times` is profile()'s result for `input_shape`."""
    n, c, h, w = input_shape
    small = (1, c, h, w) if n > 1 else (1, c, max(1, h // 2), max(1, w // 2))
    small_times = profile(model, small, repeats)
    full_shapes, small_shapes = _shapes(model, input_shape), _shapes(model, small)
    fixed = []
    for li, (t_full, t_small) in enumerate(zip(full_times, small_times)):
        ratio = _numel(small_shapes[li + 1]) / max(1, _numel(full_shapes[li + 1]))
        if ratio >= 1.0:
            fixed.append(0.0)
            continue
        a = (t_small - t_full * ratio) / (1.0 - ratio)
        fixed.append(min(max(a, 0.0), t_small, t_full))
    return fixed


def profile_tiled(model, input_shape, times, repeats: int = 5) -> list[float]:
    """`times` (profile()'s) with each BatchNorm2d's entry re-measured as a tile group runs
    it: TileParallel computes training-mode BatchNorm as TiledBatchNorm (statistics summed
    over owned blocks, all-reduced; Python over phalanx ops), not the fused kernel the
    profile timed. Both are timed here on the layer's whole input in one process (a group of
    one: no messages, those are the model's message and meeting terms) and the entry scaled
    by their ratio; every other layer runs the same module on a tile, so keeps its time."""
    shapes = _shapes(model, input_shape)
    group = _one_rank_group()
    out = list(times)
    for li, m in enumerate(model):
        if not isinstance(m, nn.BatchNorm2d):
            continue
        n, c, h, w = shapes[li]
        x = phalanx.randn(n, c, h, w)
        x.requires_grad_(True)
        whole = ((0, h), (0, w))

        fused, tiled = _batch_norm_runs(m, x, group, whole, n * h * w)
        ratio = _median_time(tiled, repeats) / max(_median_time(fused, repeats), 1e-9)
        out[li] = times[li] * ratio
    return out


def _batch_norm_runs(m, x, group, whole, count):
    """Forward+backward of BatchNorm layer `m` on `x`: the fused module, and as TileParallel
    runs it over a tile covering `whole`."""
    from .comm import TiledBatchNorm

    def fused():
        m(x).sum().backward()

    def tiled():
        mean, var = TiledBatchNorm.statistics(x, group, whole, count)
        y = TiledBatchNorm.apply(x, m.weight, m.bias, mean, var, group, whole, count, m.eps)
        y.sum().backward()

    return fused, tiled


def _median(values):
    """The middle value (the upper one of the two middle ones for an even count)."""
    return sorted(values)[len(values) // 2]


def _median_time(fn, repeats: int) -> float:
    fn()  # the first call creates the kernels' primitives
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return _median(seconds)


def _one_rank_group():
    """A tile group of this process alone, whether or not a process group is initialised:
    its all-reduces are no-ops (Group.solo), so only the computation is timed."""
    from .comm import Group

    group = Group.__new__(Group)
    group.pg, group.ranks, group.index, group.solo = None, [0], 0, True
    return group


def _layer_times(model, input_shape, repeats: int) -> list[float]:
    runs = []
    for r in range(repeats + 1):
        x = phalanx.randn(*input_shape)  # no gradient: layer 0's backward ends the pass
        outs, fwd, reached = [x], [], {}
        for i, m in enumerate(model):
            start = time.perf_counter()
            y = m(outs[-1])
            fwd.append(time.perf_counter() - start)
            if y.requires_grad:
                y.register_hook(_stamp(reached, i + 1))
            outs.append(y)
        begin = time.perf_counter()
        outs[-1].sum().backward()
        reached[0] = time.perf_counter()
        reached.setdefault(len(model), begin)
        stamps = [reached.get(i) for i in range(len(model) + 1)]
        bwd = []
        for i in range(len(model)):
            after = stamps[i + 1] if stamps[i + 1] is not None else begin
            before = stamps[i] if stamps[i] is not None else after
            bwd.append(max(before - after, 0.0))
        if r:
            runs.append([f + b for f, b in zip(fwd, bwd)])
    return [_median(col) for col in zip(*runs)]


def _stamp(reached: dict, index: int):
    def hook(grad):
        reached[index] = time.perf_counter()

    return hook


def _shapes(model, input_shape):
    shapes, x = [tuple(input_shape)], phalanx.zeros(*input_shape)
    with phalanx.no_grad():
        for m in model:
            x = m(x)
            shapes.append(tuple(x.shape))
    return shapes


def _factor_grids(g: int):
    return [(r, g // r) for r in range(1, g + 1) if g % r == 0]


def _boundaries(prefix_layers, k):
    """Grouping choices for the first k layers: one group, or a cut after every pooling."""
    pools = [
        i + 1 for i in range(k - 1) if isinstance(prefix_layers[i], (nn.MaxPool2d, nn.AvgPool2d))
    ]
    return [[]] + ([pools] if pools else []) + [[c] for c in pools if len(pools) > 1]


def _message(nbytes: float, bandwidth: float, latency: float) -> float:
    return latency + nbytes / bandwidth


def _ring(nbytes: float, n: int, bandwidth: float, latency: float) -> float:
    if n <= 1:
        return 0.0
    return 2 * (n - 1) * latency + 2 * (n - 1) / n * nbytes / bandwidth


def sync_points(model, cand: Candidate) -> int:
    """The blocking synchronisations of one training step of `cand` (the meetings where a
    rank waits for the others): those inside a tile group (tile_sync_points), then 1 more
    when there are several tile groups (DDP averages the tiled layers between the groups),
    and 1 for the data-parallel gradient all-reduce when more than one rank runs the rest
    (DDP waits for its buckets once, at the end of the backward). `cand.output` must be set
    (estimate sets it from the batch)."""
    k, (rows, cols) = cand.layers, cand.grid
    g = rows * cols if k else 1
    count = tile_sync_points(model, cand)
    if g > 1 and cand.data_parallel > 1:
        count += 1
    rest_ranks = cand.data_parallel * g if cand.output == "batch" else cand.data_parallel
    if rest_ranks > 1:
        count += 1
    return count


def tile_sync_points(model, cand: Candidate) -> int:
    """The meetings inside a tile group of g > 1 ranks, counted the way TileParallel meets:
    each BatchNorm among the tiled layers 3 (mean and variance forward, the two gradient
    sums backward), each fused-group boundary 2 (halo forward, its gradient backward), the
    hand-over 2 with output="batch" (all-to-all both ways) or 1 with "full" (all-gather; its
    backward is a local cut), and the tile gradients' all-reduce 1."""
    k, (rows, cols) = cand.layers, cand.grid
    if not k or rows * cols == 1:
        return 0
    count = 3 * sum(isinstance(m, nn.BatchNorm2d) for m in list(model)[:k])
    count += 2 * len(cand.groups)
    count += 2 if cand.output == "batch" else 1
    return count + 1


def sync_cost(samples, collective_s: float) -> tuple[float, float]:
    """(a, b) of the meetings term from a calibration on the ranks. `samples`: for each
    slice length, (slice_s, alone_s, with_s, rounds): `rounds` slices of about `slice_s`
    of computation timed alone, then each followed by a tiny collective across the ranks
    (averaged over the ranks). `collective_s`: one tiny collective back to back (the
    link's part, already in the model's message latency). Per meeting the extra is
    (with - alone) / rounds - collective_s; it is fitted as a + b * slice_s through the
    samples (least squares; one sample: b = 0), a and b clamped at 0."""
    pts = [(sl, max((w - a) / r - collective_s, 0.0)) for sl, a, w, r in samples if r > 0]
    if not pts:
        raise ValueError("sync_cost: no samples")
    if len(pts) == 1:
        return pts[0][1], 0.0
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx > 0 else 0.0
    b = max(b, 0.0)
    a = max(my - b * mx, 0.0)
    return a, b


def measure_sync(
    slices=(0.002, 0.010), rounds: int = 12, group=None, repeats: int = 3
) -> tuple[tuple[float, float], float]:
    """Measures the meetings term on the ranks of `group` (all call it at once):
    ((a, b), seconds per message back to back). Computation is a small matrix product
    repeated to about each slice length (the repeat count agreed by the ranks, so they do
    the same work, as a tile group's ranks do); every timing is averaged over the ranks.
    The whole measurement is taken `repeats` times and a, b and the per-message time are
    each the median: one measurement's slope b moved between 0 and 0.3 from row to row of
    the spatial bench (a data-parallel prediction then moved by a third of its compute)."""
    if repeats < 1:
        raise ValueError(f"measure_sync: repeats={repeats} must be at least 1")
    runs = [_measure_sync_once(slices, rounds, group) for _ in range(repeats)]
    a = _median([r[0][0] for r in runs])
    b = _median([r[0][1] for r in runs])
    return (a, b), _median([r[1] for r in runs])


def _measure_sync_once(slices, rounds: int, group) -> tuple[tuple[float, float], float]:
    from .. import distributed as dist

    world = dist.get_world_size(group)
    a = phalanx.randn(96, 96)
    x = phalanx.zeros(1)

    def work(reps):
        for _ in range(reps):
            (a @ a).sum()

    work(4)
    start = time.perf_counter()
    work(20)
    per = max((time.perf_counter() - start) / 20, 1e-6)
    dist.all_reduce(x, group=group)
    start = time.perf_counter()
    for _ in range(rounds):
        dist.all_reduce(x, group=group)
    timings = [(time.perf_counter() - start) / rounds]
    for sl in slices:
        reps = phalanx.tensor([max(1.0, sl / per)])
        dist.all_reduce(reps, group=group)
        reps = int(reps.item() / world)
        dist.barrier(group=group)
        start = time.perf_counter()
        for _ in range(rounds):
            work(reps)
        alone = time.perf_counter() - start
        dist.barrier(group=group)
        start = time.perf_counter()
        for _ in range(rounds):
            work(reps)
            dist.all_reduce(x, group=group)
        both = time.perf_counter() - start
        timings += [alone / rounds, alone, both]
    avg = phalanx.tensor(timings)
    dist.all_reduce(avg, group=group)
    t = [v / world for v in avg.tolist()]
    collective = t[0]
    samples = [(t[1 + 3 * i], t[2 + 3 * i], t[3 + 3 * i], rounds) for i in range(len(slices))]
    per_message = collective / (2 * (world - 1)) if world > 1 else 0.0
    return sync_cost(samples, collective), per_message


def _scaled(time_s: float, fixed_s: float, fraction: float) -> float:
    """A layer's time on `fraction` of the work it was profiled on: its fixed part whole."""
    return fixed_s + (time_s - fixed_s) * fraction


def estimate(
    model,
    shapes,
    times,
    cand: Candidate,
    bandwidth,
    latency,
    memory,
    fixed=None,
    scale=1.0,
    sync=(0.0, 0.0),
    tiled=None,
    tile_step=None,
    tile_meetings=None,
):
    """Fills cand's predicted step time, peak memory and whether it fits. `fixed`: each
    layer's fixed seconds per call (profile_fixed; None: all of a layer's time scales);
    `scale`: compute_scale; `sync`: (a, b) of the meetings term (sync_cost); `tiled`: each
    layer's time as a tile group runs it (profile_tiled; None: `times`); `tile_step`: the
    tiled layers' forward+backward as the slowest member runs them, measured
    (tile_profile.profile_tile_step), in place of the per-layer model of them;
    `tile_meetings`: what the tile group's meetings add to a step, measured
    (tile_profile.profile_tile_meetings), in place of the meetings term and the message
    latencies inside the tile group (their bytes over the link stay modelled)."""
    fixed = [0.0] * len(times) if fixed is None else list(fixed)
    n = shapes[0][0]
    k, (rows, cols) = cand.layers, cand.grid
    g = rows * cols
    d = cand.data_parallel
    layers = list(model)
    params = [[p.numel() * FLOAT for p in m.parameters()] for m in layers]
    per_replica = n / d
    cand.output = "batch" if per_replica >= g else "full"
    compute = comm = 0.0
    act = 0.0
    front = 0.0  # the tiled layers' computation, modelled
    tile_latency = 0.0  # the tile group's messages' latencies, when not measured
    if k:
        cuts = [0, *cand.groups, k]
        size = shapes[0][2:]
        halo = 0.0
        for gi, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
            geo = [describe(m, i) for i, m in enumerate(layers[lo:hi])]
            tiles = plan_tiles(geo, size, (rows, cols))
            for li in range(lo, hi):
                _, c, h, w = shapes[li + 1]
                area = max(
                    (t.rows[li - lo].out[1] - t.rows[li - lo].out[0])
                    * (t.cols[li - lo].out[1] - t.cols[li - lo].out[0])
                    for t in tiles
                )
                t_li = times[li] if tiled is None or g == 1 else tiled[li]
                front += _scaled(t_li, fixed[li], (per_replica / n) * area / (h * w))
                act += per_replica * c * area * FLOAT
                if isinstance(layers[li], nn.BatchNorm2d) and g > 1:
                    comm += 4 * _ring(c * FLOAT, g, bandwidth, 0.0)
                    tile_latency += 4 * _ring(0.0, g, bandwidth, latency)
            if gi > 0 and g > 1:  # halo in, halo gradient out: the widest tile's share
                _, c, h, w = shapes[lo]
                for t in tiles:
                    (a, b), (e, f) = t.input_region
                    own = (h * w) / g
                    halo = max(halo, ((b - a) * (f - e) - own) * c * per_replica * FLOAT)
                comm += 2 * halo / bandwidth
                tile_latency += 2 * 4 * latency
            size = shapes[hi][2:]
        if g > 1:  # all-to-all to batch parallelism (or all-gather), forward and backward
            _, c, h, w = shapes[k]
            comm += 2 * (g - 1) / g * per_replica * c * h * w * FLOAT / bandwidth
            tile_latency += 2 * (g - 1) * latency
            comm += _ring(sum(sum(p) for p in params[:k]), g, bandwidth, 0.0)
            tile_latency += _ring(0.0, g, bandwidth, latency)
    compute += tile_step if tile_step is not None and k and g > 1 else front
    front_s = compute * scale
    per_rank = per_replica / g if cand.output == "batch" else per_replica
    compute += sum(_scaled(t, a, per_rank / n) for t, a in zip(times[k:], fixed[k:]))
    for li in range(k, len(layers)):
        act += per_rank * _numel(shapes[li + 1][1:]) * FLOAT
    # every parameter is averaged across the replicas (the rest: across all ranks)
    comm += _ring(sum(sum(p) for p in params[:k]), d, bandwidth, latency)
    rest_ranks = d * g if cand.output == "batch" else d
    comm += _ring(sum(sum(p) for p in params[k:]), rest_ranks, bandwidth, latency)
    weights = 3 * sum(sum(p) for p in params)
    compute *= scale
    meetings = sync_points(model, cand)
    measured = tile_meetings is not None and k and g > 1
    if measured:
        # the tile group's meetings as measured (its ranks' drift apart included); the
        # others (DDP's) by the meetings term, over the computation after the tiles
        others = meetings - tile_sync_points(model, cand)
        rest_s = compute - front_s
        wait = tile_meetings + others * sync[0] + (sync[1] * rest_s if others else 0.0)
    else:
        comm += tile_latency
        wait = meetings * sync[0] + (sync[1] * compute if meetings else 0.0)
    cand.step_s = compute + comm + wait
    cand.peak_bytes = int(weights + act)
    cand.fits = memory is None or cand.peak_bytes <= memory
    cand.parts = {
        "compute_s": compute,
        "comm_s": comm,
        "sync_s": wait,
        "syncs": meetings,
        "tile_syncs": tile_sync_points(model, cand),
        "tile_front_s": front,  # the tiled layers' computation as modelled (unscaled)
    }
    if measured:
        cand.parts["tile_meetings_s"] = tile_meetings
    return cand


def _numel(shape):
    out = 1
    for s in shape:
        out *= s
    return out


def candidates(model, input_shape, world: int):
    """Every configuration the planner weighs: g-rank tile groups (g = 1: none) times d
    data-parallel replicas, g*d <= world, each replica with at least one sample."""
    layers = list(model)
    k_max = spatial_prefix(model)
    shapes = _shapes(model, input_shape)
    n = input_shape[0]
    out = []
    for g in range(1, world + 1):
        for d in range(1, world // g + 1):
            if n % d:
                continue
            if g == 1:
                out.append(Candidate(0, [], (1, 1), d))
                continue
            for k in range(1, k_max + 1):
                for grid in _factor_grids(g):
                    for cuts in _boundaries(layers, k):
                        out.append(Candidate(k, cuts, grid, d))
    return out, shapes


def plan(
    model,
    input_shape,
    world_size: int,
    link_bandwidth: float,
    memory_per_device: float | None = None,
    *,
    latency: float = 2e-4,
    layer_times=None,
    layer_fixed=None,
    compute_scale: float = 1.0,
    sync=(0.0, 0.0),
    tiled_times=None,
    tile_step=None,
    measure_top: int = 5,
    verbose: bool = True,
) -> dict:
    """The best configuration for training `model` (an nn.Sequential: spatial layers first) on
    batches of `input_shape` over `world_size` devices joined by links of `link_bandwidth`
    bytes/s and `latency` s, each with `memory_per_device` bytes (None: unlimited).

    layer_times: seconds of forward+backward per layer on the whole input (default: measured
    now, a short profiling run). layer_fixed: the part of each that does not shrink with
    the work (default: measured now when layer_times is, else none). compute_scale: a
    training step measured on one device over the sum of layer_times (see the module
    docstring; default 1). sync: (a, b) of the meetings term (measure_sync; default none).
    tiled_times: layer_times as a tile group runs the layers (profile_tiled; default:
    measured now when layer_times is, else layer_times).
    tile_step: after the model ranks every candidate, while the best one tiles and was not
    measured (at most `measure_top` times), its tiled layers' computation is measured and
    used instead of the model's, and every unmeasured tiling candidate's modelled one is
    scaled by the median measured/modelled ratio so far; then all are ranked again. True
    measures here (tile_profile.profile_tile_step); a callable(config) -> seconds measures
    as the caller wants (ranks planning together must all get the same numbers, e.g.
    measure on each and average). The callable may return (seconds, meetings_s) instead:
    meetings_s is what the tile group's meetings add to a step, measured on its ranks
    (tile_profile.profile_tile_meetings); it replaces the modelled meetings and message
    latencies inside the tile group, and the unmeasured candidates with tile groups of
    the same size get the median measured cost per meeting times their meetings.
    None: the model alone.
    Prints the candidates; returns the best as a dict."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"plan: model must be an nn.Sequential, got {type(model).__name__}")
    if world_size < 1:
        raise ValueError(f"plan: world_size={world_size} must be at least 1")
    if link_bandwidth <= 0:
        raise ValueError(f"plan: link_bandwidth={link_bandwidth} must be positive (bytes/s)")
    cands, shapes = candidates(model, input_shape, world_size)
    if layer_times is None:
        times = profile(model, input_shape)
        if layer_fixed is None:
            layer_fixed = profile_fixed(model, input_shape, times)
        if tiled_times is None:
            tiled_times = profile_tiled(model, input_shape, times)
    else:
        times = list(layer_times)
    if len(times) != len(model):
        raise ValueError(f"plan: layer_times has {len(times)} entries for {len(model)} layers")
    if layer_fixed is not None and len(layer_fixed) != len(model):
        raise ValueError(
            f"plan: layer_fixed has {len(layer_fixed)} entries for {len(model)} layers"
        )

    def estimate_one(c, tile_step_s=None, tile_meetings_s=None):
        return estimate(
            model,
            shapes,
            times,
            c,
            link_bandwidth,
            latency,
            memory_per_device,
            layer_fixed,
            compute_scale,
            tuple(sync),
            tiled_times,
            tile_step_s,
            tile_meetings_s,
        )

    valid = []
    for c in cands:
        try:
            valid.append(estimate_one(c))
        except ValueError:  # a grid the map cannot hold
            continue
    valid.sort(key=lambda c: (not c.fits, c.step_s))
    if tile_step is not None:
        measure = _tile_step_measure(model, input_shape) if tile_step is True else tile_step
        _measure_best_tilings(valid, measure, measure_top, estimate_one)
    if verbose:
        print(table(valid[:20]))
        if len(valid) > 20:
            print(f"... and {len(valid) - 20} more")
    best = valid[0]
    if not best.fits:
        raise MemoryError(
            f"plan: no configuration fits in {memory_per_device} bytes per device; the smallest "
            f"needs {min(c.peak_bytes for c in valid)}"
        )
    return best.config()


def _measure_best_tilings(valid, measure, budget: int, reestimate) -> None:
    """While the best candidate tiles and was not measured (at most `budget` times): measure
    its tile step and estimate it again with that; every candidate not measured gets its
    modelled tiled compute times the median of measured / modelled so far (the tile steps'
    copies and pastes are not in the per-layer model, and cost alike across tilings).
    Leaves `valid` sorted best first."""

    def tiles(c):
        return c.layers and c.grid[0] * c.grid[1] > 1

    def size(c):
        return c.grid[0] * c.grid[1]

    ratios, per_meeting = [], {}  # per_meeting: tile group size -> measured s per meeting
    for _ in range(budget):
        valid.sort(key=lambda c: (not c.fits, c.step_s))
        best = valid[0]
        if not tiles(best) or "tile_step_s" in best.parts:
            break
        modelled = best.parts["tile_front_s"]
        result = measure(best.config())
        seconds, meetings = result if isinstance(result, tuple) else (result, None)
        reestimate(best, seconds, meetings)
        best.parts["tile_step_s"] = seconds
        ratios.append(seconds / modelled if modelled > 0 else 1.0)
        if meetings is not None:
            per_meeting.setdefault(size(best), []).append(meetings / best.parts["tile_syncs"])
        ratio = _median(ratios)
        for c in valid:
            if tiles(c) and "tile_step_s" not in c.parts:
                each = per_meeting.get(size(c))
                met = _median(each) * c.parts["tile_syncs"] if each else None
                reestimate(c, c.parts["tile_front_s"] * ratio, met)
                c.parts["tile_ratio"] = ratio
    valid.sort(key=lambda c: (not c.fits, c.step_s))


def _tile_step_measure(model, input_shape):
    from .tile_profile import profile_tile_step

    def measure(config):
        return profile_tile_step(
            model,
            input_shape,
            config["layers"],
            config["grid"],
            config["groups"],
            config["data_parallel"],
        )

    return measure


def predict(
    model,
    input_shape,
    config: dict,
    link_bandwidth: float,
    layer_times,
    *,
    latency: float = 2e-4,
    layer_fixed=None,
    compute_scale: float = 1.0,
    sync=(0.0, 0.0),
    tiled_times=None,
    tile_step_s=None,
    tile_meetings_s=None,
) -> dict:
    """The cost model's step time and peak memory for one configuration (a dict as plan()
    returns; layers 0 or a 1x1 grid: data parallelism over `data_parallel` replicas).
    tile_step_s: the tiled layers' computation measured (tile_profile.profile_tile_step)
    instead of modelled from the per-layer times; tile_meetings_s: what the tile group's
    meetings add to a step, measured (tile_profile.profile_tile_meetings), instead of the
    meetings term and message latencies inside the tile group."""
    grid = tuple(config.get("grid", (1, 1)))
    cand = Candidate(
        int(config.get("layers", 0)) if grid != (1, 1) else 0,
        list(config.get("groups", [])),
        grid,
        int(config.get("data_parallel", 1)),
    )
    shapes = _shapes(model, input_shape)
    estimate(
        model,
        shapes,
        list(layer_times),
        cand,
        link_bandwidth,
        latency,
        None,
        layer_fixed,
        compute_scale,
        tuple(sync),
        tiled_times,
        tile_step_s,
        tile_meetings_s,
    )
    return {
        "step_s": cand.step_s,
        "peak_bytes": cand.peak_bytes,
        "output": cand.output,
        **cand.parts,
    }


def _tile_note(c) -> str:
    """How the row's tiled computation and meetings were obtained, when not from the model
    alone."""
    note = ""
    if "tile_step_s" in c.parts:
        note = "  tiles measured"
    elif "tile_ratio" in c.parts:
        note = f"  tiles x{c.parts['tile_ratio']:.2f} (as measured)"
    if "tile_meetings_s" in c.parts:
        note += ", meetings measured" if "tile_step_s" in c.parts else ", meetings as measured"
    return note


def table(cands) -> str:
    lines = [
        f"{'tiled layers':>12} {'groups':>10} {'grid':>6} {'replicas':>8} {'output':>6} "
        f"{'step ms':>9} {'compute':>8} {'comm':>8} {'meet':>8} {'peak MiB':>9} fits"
    ]
    for c in cands:
        lines.append(
            f"{c.layers:>12} {str(c.groups):>10} {c.grid[0]}x{c.grid[1]:<4} {c.data_parallel:>8} "
            f"{c.output:>6} "
            f"{c.step_s * 1e3:>9.2f} {c.parts['compute_s'] * 1e3:>8.2f} "
            f"{c.parts['comm_s'] * 1e3:>8.2f} {c.parts['sync_s'] * 1e3:>8.2f} "
            f"{c.peak_bytes / 2**20:>9.2f} "
            f"{'yes' if c.fits else 'no'}"
            f"{_tile_note(c)}"
        )
    return "\n".join(lines)
