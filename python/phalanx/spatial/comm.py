"""Differentiable collectives for tile groups, as phalanx.autograd.Functions.

Every rank of a group builds the same graph (the same layers, the same collectives in the
same order), so the collectives inside backward meet in the same order on every rank.
"""

from __future__ import annotations

import phalanx

from .. import distributed as dist
from ..autograd import Function


class Group:
    """A tile group: the process group (None: one process, nothing to communicate), the
    global rank of each member, and this rank's index."""

    def __init__(self, process_group, size: int) -> None:
        self.pg = process_group
        if process_group is dist.GroupMember.NON_GROUP_MEMBER:
            raise ValueError(
                "TileParallel: this rank is not a member of process_group (new_group returned "
                "NON_GROUP_MEMBER here): pass the tile group this rank belongs to"
            )
        if process_group is None and not dist.is_initialized():
            self.ranks, self.index = [0], 0
        else:
            self.ranks = (
                list(process_group.ranks)
                if process_group is not None
                else list(range(dist.get_world_size()))
            )
            self.index = dist.get_rank(process_group)
        self.solo = len(self.ranks) == 1

    def __len__(self) -> int:
        return len(self.ranks)

    def all_reduce(self, t, op=None):
        if not self.solo:
            if op is None:
                dist.all_reduce(t, group=self.pg)
            else:
                dist.all_reduce(t, op=op, group=self.pg)
        return t

    def all_gather(self, bufs: list, buf) -> None:
        dist.all_gather(bufs, buf, group=self.pg)

    def exchange(self, sends: dict, recvs: dict, tag: int) -> None:
        """Point-to-point: sends[j] goes to member j, recvs[j] is filled by member j."""
        work = [
            dist.isend(t, self.ranks[j], group=self.pg, tag=tag)
            for j, t in sends.items()
            if t.numel()
        ]
        work += [
            dist.irecv(t, self.ranks[j], group=self.pg, tag=tag)
            for j, t in recvs.items()
            if t.numel()
        ]
        for w in work:
            w.wait()


class AllReduceSum(Function):
    """Sum over the group; the gradient is summed too (every rank's output used every input)."""

    @staticmethod
    def forward(ctx, t, group):
        ctx.group = group
        return group.all_reduce(t.clone())

    @staticmethod
    def backward(ctx, g):
        return ctx.group.all_reduce(g.clone()), None


class SumGradients(Function):
    """Identity on (input, *parameters); backward sums their gradients over the group in one
    all-reduce (each rank holds the part its tile contributed). One node, so one collective,
    at the end of the backward on every rank."""

    @staticmethod
    def forward(ctx, group, *tensors):
        ctx.group = group
        ctx.shapes = [t.shape for t in tensors]
        return tuple(tensors)

    @staticmethod
    def backward(ctx, *grads):
        need = ctx.needs_input_grad[1:]
        flat = [g.reshape(-1) for g, n in zip(grads, need) if n]
        if not flat:
            return (None,) * (len(grads) + 1)
        total = ctx.group.all_reduce(phalanx.cat(flat, 0))
        out, at = [None], 0
        for g, n in zip(grads, need):
            if not n:
                out.append(None)
                continue
            k = g.numel()
            out.append(total.narrow(0, at, k).reshape(g.shape))
            at += k
        return tuple(out)


def _intersect(a, b):
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo < hi else None


def _region_box(a, b):
    """Intersection of two (rows, cols) regions, or None."""
    r, c = _intersect(a[0], b[0]), _intersect(a[1], b[1])
    return (r, c) if r and c else None


def _cut(t, region, origin):
    """The part of t (which covers a region starting at `origin`) that is `region`."""
    (r0, r1), (c0, c1) = region
    return t[:, :, r0 - origin[0] : r1 - origin[0], c0 - origin[1] : c1 - origin[1]]


def _size(region):
    return region[0][1] - region[0][0], region[1][1] - region[1][0]


def _paste(dst, region, origin, src) -> None:
    (r0, r1), (c0, c1) = region
    dst[:, :, r0 - origin[0] : r1 - origin[0], c0 - origin[1] : c1 - origin[1]] = src


class GatherTiles(Function):
    """Every rank's output tile -> the whole map on every rank (output="full"). Backward: each
    rank's tile of the gradient (the rest of the model ran replicated, so the gradient of the
    whole map is the same on every rank)."""

    @staticmethod
    def forward(ctx, tile, group, regions):
        ctx.region, ctx.origin = regions[group.index], (0, 0)
        n, c = tile.shape[0], tile.shape[1]
        h = regions[-1][0][1]
        w = regions[-1][1][1]
        full = phalanx.zeros(n, c, h, w)
        if group.solo:
            _paste(full, ctx.region, (0, 0), tile)
            return full
        mh = max(_size(r)[0] for r in regions)
        mw = max(_size(r)[1] for r in regions)
        buf = phalanx.zeros(n, c, mh, mw)
        th, tw = _size(ctx.region)
        buf[:, :, :th, :tw] = tile
        bufs = [phalanx.zeros(n, c, mh, mw) for _ in regions]
        group.all_gather(bufs, buf)
        for b, r in zip(bufs, regions):
            rh, rw = _size(r)
            _paste(full, r, (0, 0), b[:, :, :rh, :rw])
        return full

    @staticmethod
    def backward(ctx, g):
        return _cut(g, ctx.region, (0, 0)).contiguous(), None, None


def batch_slices(n: int, parts: int):
    from .geometry import split

    return split(n, parts)


class TilesToBatch(Function):
    """All-to-all (output="batch"): rank i gets the whole map of batch slice i. Backward sends
    each tile owner its part of every slice's gradient, scaled by 1/group size: the rest of the
    model runs data-parallel, its loss the mean over the ranks (as DistributedDataParallel's)."""

    @staticmethod
    def forward(ctx, tile, group, regions):
        me = group.index
        slices = batch_slices(tile.shape[0], len(group))
        ctx.group, ctx.regions, ctx.slices = group, regions, slices
        c = tile.shape[1]
        h, w = regions[-1][0][1], regions[-1][1][1]
        b0, b1 = slices[me]
        out = phalanx.zeros(b1 - b0, c, h, w)
        _paste(out, regions[me], (0, 0), tile[b0:b1])
        sends = {j: tile[s0:s1].contiguous() for j, (s0, s1) in enumerate(slices) if j != me}
        recvs = {j: phalanx.zeros(b1 - b0, c, *_size(r)) for j, r in enumerate(regions) if j != me}
        group.exchange(sends, recvs, tag=7001)
        for j, t in recvs.items():
            _paste(out, regions[j], (0, 0), t)
        return out

    @staticmethod
    def backward(ctx, g):
        group, regions, slices, me = ctx.group, ctx.regions, ctx.slices, ctx.group.index
        n = slices[-1][1]
        c = g.shape[1]
        th, tw = _size(regions[me])
        grad = phalanx.zeros(n, c, th, tw)
        b0, b1 = slices[me]
        grad[b0:b1] = _cut(g, regions[me], (0, 0))
        sends = {j: _cut(g, r, (0, 0)).contiguous() for j, r in enumerate(regions) if j != me}
        recvs = {
            j: phalanx.zeros(s1 - s0, c, th, tw) for j, (s0, s1) in enumerate(slices) if j != me
        }
        group.exchange(sends, recvs, tag=7002)
        for j, t in recvs.items():
            s0, s1 = slices[j]
            grad[s0:s1] = t
        return grad * (1.0 / len(group)), None, None


class HaloExchange(Function):
    """At a group boundary: each rank holds its owned block of the map and receives from its
    neighbours only the parts of theirs its next tile reads (the halo). Backward returns the
    halo's gradient to its owners, which add it to their own."""

    @staticmethod
    def forward(ctx, block, group, owned, needed):
        me = group.index
        ctx.group, ctx.owned, ctx.needed = group, owned, needed
        n, c = block.shape[0], block.shape[1]
        out = phalanx.zeros(n, c, *_size(needed[me]))
        origin = (needed[me][0][0], needed[me][1][0])
        mine = (owned[me][0][0], owned[me][1][0])
        own = _region_box(owned[me], needed[me])
        if own:
            _paste(out, own, origin, _cut(block, own, mine))
        sends, recvs, boxes = {}, {}, {}
        for j in range(len(group)):
            if j == me:
                continue
            give = _region_box(owned[me], needed[j])
            if give:
                sends[j] = _cut(block, give, mine).contiguous()
            take = _region_box(owned[j], needed[me])
            if take:
                boxes[j] = take
                recvs[j] = phalanx.zeros(n, c, *_size(take))
        group.exchange(sends, recvs, tag=7003)
        for j, t in recvs.items():
            _paste(out, boxes[j], origin, t)
        return out

    @staticmethod
    def backward(ctx, g):
        group, owned, needed, me = ctx.group, ctx.owned, ctx.needed, ctx.group.index
        n, c = g.shape[0], g.shape[1]
        origin = (needed[me][0][0], needed[me][1][0])
        mine = (owned[me][0][0], owned[me][1][0])
        grad = phalanx.zeros(n, c, *_size(owned[me]))
        own = _region_box(owned[me], needed[me])
        if own:
            _paste(grad, own, mine, _cut(g, own, origin))
        sends, recvs, boxes = {}, {}, {}
        for j in range(len(group)):
            if j == me:
                continue
            take = _region_box(owned[j], needed[me])
            if take:
                sends[j] = _cut(g, take, origin).contiguous()
            give = _region_box(owned[me], needed[j])
            if give:
                boxes[j] = give
                recvs[j] = phalanx.zeros(n, c, *_size(give))
        group.exchange(sends, recvs, tag=7004)
        for j, t in recvs.items():
            (r0, r1), (c0, c1) = boxes[j]
            sl = (
                slice(None),
                slice(None),
                slice(r0 - mine[0], r1 - mine[0]),
                slice(c0 - mine[1], c1 - mine[1]),
            )
            grad[sl] = grad[sl] + t
        return grad, None, None, None


class TiledBatchNorm(Function):
    """BatchNorm in training over a tile, with the statistics of the whole map: each rank sums
    over the block it owns (`owned`: rows, cols inside the tile), all-reduced, so every position
    counts once. Backward is the usual BatchNorm gradient with its two per-channel sums taken
    over every rank's whole tile (halo copies included: each copy used the statistics) and
    all-reduced; the statistics' part of the gradient goes to owned positions only. Saves
    only the input, as the fused kernel does."""

    @staticmethod
    def statistics(x, group, owned, count):
        """Mean and biased variance over the whole map (two passes, each one all-reduce)."""
        (r0, r1), (c0, c1) = owned
        c = x.shape[1]
        with phalanx.no_grad():
            own = x[:, :, r0:r1, c0:c1]
            mean = group.all_reduce(own.sum(dim=(0, 2, 3))) * (1.0 / count)
            centred = own - mean.reshape(1, c, 1, 1)
            var = group.all_reduce((centred * centred).sum(dim=(0, 2, 3))) * (1.0 / count)
        return mean, var

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, group, owned, count, eps):
        c = x.shape[1]
        invstd = 1.0 / (var + eps).sqrt()
        y = (x - mean.reshape(1, c, 1, 1)) * invstd.reshape(1, c, 1, 1)
        if weight is not None:
            y = y * weight.reshape(1, c, 1, 1)
        if bias is not None:
            y = y + bias.reshape(1, c, 1, 1)
        ctx.save_for_backward(x, weight)
        ctx.mean, ctx.invstd = mean, invstd
        ctx.group, ctx.owned, ctx.count = group, owned, count
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        c = x.shape[1]
        mean, invstd = ctx.mean.reshape(1, c, 1, 1), ctx.invstd.reshape(1, c, 1, 1)
        xhat = (x - mean) * invstd
        gy = g * weight.reshape(1, c, 1, 1) if weight is not None else g
        sums = phalanx.cat([gy.sum(dim=(0, 2, 3)), (gy * xhat).sum(dim=(0, 2, 3))], 0)
        sums = ctx.group.all_reduce(sums)
        s1 = sums.narrow(0, 0, c).reshape(1, c, 1, 1)
        s2 = sums.narrow(0, c, c).reshape(1, c, 1, 1)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = gy * invstd
            (r0, r1), (c0, c1) = ctx.owned
            part = (slice(None), slice(None), slice(r0, r1), slice(c0, c1))
            dx[part] = dx[part] - (s1 + xhat[part] * s2) * (invstd * (1.0 / ctx.count))
        dw = (g * xhat).sum(dim=(0, 2, 3)) if ctx.needs_input_grad[1] else None
        db = g.sum(dim=(0, 2, 3)) if ctx.needs_input_grad[2] else None
        return dx, dw, db, None, None, None, None, None, None
