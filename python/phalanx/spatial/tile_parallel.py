"""TileParallel: the early layers of a network split over a group of ranks as fused tiles.

Every rank of the group is given the same full batch. Each rank computes one output tile of a
fused group of layers end to end from the input region the tile needs (geometry.py), recomputing
the overlap with its neighbours instead of communicating inside the group. At a boundary between
groups each rank receives only the halo it needs (comm.HaloExchange). The gradients of the
parameters (and of the input) are summed over the group in one all-reduce at the end of the
backward; BatchNorm uses the statistics of the whole map, all-reduced.
"""

from __future__ import annotations

import phalanx

from .. import distributed as dist
from .. import nn
from ..nn import functional as F
from . import comm, layers
from .geometry import plan_tiles, split

OUTPUTS = ("full", "batch")


def group_bounds(groups, n: int) -> list[tuple[int, int]]:
    """[start, stop) of each fused group of n layers, from the boundaries `groups`."""
    cuts = sorted(set(int(g) for g in (groups or [])))
    if any(c <= 0 or c >= n for c in cuts):
        raise ValueError(
            f"TileParallel: groups={list(groups)} must be layer indices in [1, {n - 1}] "
            "(where a new fused group starts)"
        )
    edges = [0, *cuts, n]
    return list(zip(edges[:-1], edges[1:]))


def _plans(geometry, bounds, size, grid):
    out, at = [], tuple(size)
    for lo, hi in bounds:
        group_plans = plan_tiles(geometry[lo:hi], at, grid)
        out.append(group_plans)
        at = (group_plans[-1].rows[-1].out[1], group_plans[-1].cols[-1].out[1])
    return out


def tile_plans(module, size, grid, groups=None):
    """The tiles TileParallel(module, grid, groups=groups) computes for an input map of `size`
    (H, W): per fused group, the TilePlan of every rank (row-major). No process group needed."""
    layers_ = list(module)
    geometry = [layers.describe(m, i) for i, m in enumerate(layers_)]
    return _plans(geometry, group_bounds(groups, len(layers_)), size, tuple(grid))


class TileParallel(nn.Module):
    """Runs `module` (an nn.Sequential of spatial layers) as tiles over `grid` = (rows, cols)
    ranks of `process_group` (None: the world).

    output="full": every rank gets the whole output map; output="batch": rank i gets the whole
    map of its slice of the batch (the rest of the model then runs data-parallel in the group).
    groups=[3, 7]: fused groups end before layers 3 and 7, with a halo exchange at each boundary.
    check_inputs=True: a cheap checksum all-reduce refuses different inputs on the ranks.
    """

    def __init__(
        self,
        module,
        grid=(2, 2),
        process_group=None,
        output: str = "full",
        groups=None,
        check_inputs: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Sequential):
            raise TypeError(
                f"TileParallel: module must be an nn.Sequential of spatial layers, got "
                f"{type(module).__name__}"
            )
        if output not in OUTPUTS:
            raise ValueError(f"TileParallel: output={output!r} is not one of {OUTPUTS}")
        grid = tuple(int(g) for g in grid)
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"TileParallel: grid={grid} must be (rows, cols), each at least 1")
        self.module = module
        self.grid = grid
        self.output = output
        self.check_inputs = check_inputs
        self._layers = list(module)
        if not self._layers:
            raise ValueError("TileParallel: the module has no layers")
        self._geometry = [layers.describe(m, i) for i, m in enumerate(self._layers)]
        self._bounds = self._check_groups(groups)
        # a comm.Group as it is: the planner's SilentGroup (tile_profile.py)
        if isinstance(process_group, comm.Group):
            self._group = process_group
        else:
            self._group = comm.Group(process_group, grid[0] * grid[1])
        if len(self._group) != grid[0] * grid[1]:
            raise ValueError(
                f"TileParallel: grid {grid[0]}x{grid[1]} needs a group of {grid[0] * grid[1]} "
                f"ranks, the process group has {len(self._group)}"
            )
        self._plans = {}

    def _check_groups(self, groups) -> list[tuple[int, int]]:
        return group_bounds(groups, len(self._layers))

    def local_batch(self, n: int) -> tuple[int, int]:
        """The samples [lo, hi) of a batch of n whose output this rank gets (all of them for
        output="full", its slice for output="batch")."""
        if self.output == "full" or self._group.solo:
            return 0, n
        return split(n, len(self._group))[self._group.index]

    def plans(self, size):
        """Per fused group, the TilePlan of every rank, for an input map of `size` (H, W)."""
        size = tuple(size)
        if size not in self._plans:
            self._plans[size] = _plans(self._geometry, self._bounds, size, self.grid)
        return self._plans[size]

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError(
                f"TileParallel: expected an (N, C, H, W) input, got shape {tuple(x.shape)}"
            )
        group = self._group
        if self.check_inputs:
            self._check_same_input(x)
        if self.output == "batch" and x.shape[0] < len(group):
            raise ValueError(
                f"TileParallel: output='batch' splits the batch over {len(group)} ranks; the "
                f"batch has {x.shape[0]} samples"
            )
        plans = self.plans(x.shape[2:])
        params = [p for p in self.module.parameters()]
        if not group.solo:
            x, *aliases = comm.SumGradients.apply(group, x, *params)
            alias = {id(p): a for p, a in zip(params, aliases)}
        else:
            alias = {id(p): p for p in params}
        me = group.index
        h = x
        have = ((0, x.shape[2]), (0, x.shape[3]))
        for gi, (lo, hi) in enumerate(self._bounds):
            plan = plans[gi][me]
            if gi > 0:
                prev = plans[gi - 1]
                owned = [p.output_region for p in prev]
                needed = [p.input_region for p in plans[gi]]
                h = comm.HaloExchange.apply(h, group, owned, needed) if not group.solo else h
                have = plan.input_region
                if group.solo:
                    have = owned[0]
            for li in range(lo, hi):
                h = self._run(li, h, have, plan.rows[li - lo], plan.cols[li - lo], alias)
                have = (plan.rows[li - lo].out, plan.cols[li - lo].out)
        regions = [p.output_region for p in plans[-1]]
        if group.solo:
            return h
        if self.output == "full":
            return comm.GatherTiles.apply(h, group, regions)
        return comm.TilesToBatch.apply(h, group, regions)

    # ---- one layer of one tile -------------------------------------------------------------

    def _run(self, index, x, have, sr, sc, alias):
        m = self._layers[index]
        if isinstance(m, nn.Conv2d):
            x, pad, skip, _ = layers.prepare(x, have, sr, sc, m.stride)
            b = alias[id(m.bias)] if m.bias is not None else None
            y = F.conv2d(x, alias[id(m.weight)], b, m.stride, pad, m.dilation, m.groups)
            return layers.finish(y, skip, sr, sc)
        if isinstance(m, nn.MaxPool2d):
            stride = layers._pair(m.stride)
            x, pad, skip, _ = layers.prepare(x, have, sr, sc, stride, float("-inf"))
            y = F.max_pool2d(x, m.kernel_size, stride, pad, getattr(m, "dilation", 1))
            return layers.finish(y, skip, sr, sc)
        if isinstance(m, nn.AvgPool2d):
            stride = layers._pair(m.stride)
            x, pad, skip, copied = layers.prepare(x, have, sr, sc, stride)
            y = F.avg_pool2d(x, m.kernel_size, stride, pad, False, m.count_include_pad)
            if copied and not m.count_include_pad:
                # the copied zeros were counted as values: divide by the share that is real
                with phalanx.no_grad():
                    ones = phalanx.ones(1, 1, sr.take[1] - sr.take[0], sc.take[1] - sc.take[0])
                    taken = ((0, ones.shape[2]), (0, ones.shape[3]))
                    mask, _, _, _ = layers.prepare(
                        ones, taken, layers._shift(sr), layers._shift(sc), stride
                    )
                    share = F.avg_pool2d(mask, m.kernel_size, stride, pad, False, False)
                y = y / share
            return layers.finish(y, skip, sr, sc)
        x = layers.crop_and_pad(x, have, sr, sc)  # elementwise: the interval it produces
        if isinstance(m, nn.BatchNorm2d):
            return self._batch_norm(m, x, sr, sc, alias)
        if isinstance(m, nn.Dropout):
            return self._dropout(m, x, sr, sc, index)
        return m(x)

    def _batch_norm(self, m, x, sr, sc, alias):
        w = alias[id(m.weight)] if m.weight is not None else None
        b = alias[id(m.bias)] if m.bias is not None else None
        use_batch = m.training or (m.running_mean is None and m.running_var is None)
        if not use_batch:
            return F.batch_norm(x, m.running_mean, m.running_var, w, b, False, 0.0, m.eps)
        # Statistics over the whole map: each rank sums over the block it owns, all-reduced.
        (o0, o1), (p0, p1) = sr.owned, sc.owned
        owned = ((o0 - sr.out[0], o1 - sr.out[0]), (p0 - sc.out[0], p1 - sc.out[0]))
        count = x.shape[0] * sr.map_size * sc.map_size
        mean, var = comm.TiledBatchNorm.statistics(x, self._group, owned, count)
        y = comm.TiledBatchNorm.apply(x, w, b, mean, var, self._group, owned, count, m.eps)
        if m.training and m.track_running_stats and m.running_mean is not None:
            with phalanx.no_grad():
                m.num_batches_tracked.add_(1)
                f = m.momentum
                if f is None:
                    f = 1.0 / float(m.num_batches_tracked.item())
                unbiased = var * (count / max(count - 1, 1))
                m.running_mean.mul_(1 - f).add_(mean * f)
                m.running_var.mul_(1 - f).add_(unbiased * f)
        return y

    def _dropout(self, m, x, sr, sc, index):
        if not m.training or m.p == 0:
            return x
        # One mask over the whole map, drawn alike on every rank (same seed), cut to the tile.
        n, c = x.shape[0], x.shape[1]
        mask = phalanx.rand(n, c, sr.map_size, sc.map_size) >= m.p
        (r0, r1), (c0, c1) = sr.out, sc.out
        keep = mask[:, :, r0:r1, c0:c1].float() * (1.0 / (1.0 - m.p))
        return x * keep

    def _check_same_input(self, x) -> None:
        """Refuses (on every rank alike) inputs that differ between the ranks of the group."""
        flat = x.detach().reshape(-1)
        # a position-weighted sum too, so reordered values do not pass
        weights = phalanx.arange(flat.numel()).float() * (1.0 / max(flat.numel(), 1)) + 1.0
        sums = phalanx.stack([flat.sum(), (flat * weights).sum()])
        shape = phalanx.tensor([float(s) for s in x.shape])
        probe = phalanx.cat([sums, shape])
        high = self._group.all_reduce(probe.clone(), dist.ReduceOp.MAX)
        low = self._group.all_reduce(-probe, dist.ReduceOp.MAX)
        hi, lo = high.tolist(), [-v for v in low.tolist()]
        if any(abs(a - b) > 1e-6 * (abs(a) + 1) for a, b in zip(hi, lo)):
            raise ValueError(
                f"TileParallel: the ranks of the tile group got different inputs (checksums "
                f"from {lo} to {hi}); every rank must pass the same full batch"
            )
