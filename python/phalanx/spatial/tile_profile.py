"""profile_tile_step(): a tile step's own computation, timed on one process.

The planner's compute for tiled layers is each plain layer's profiled time scaled to a tile's
area. A tile step also copies tile regions, pastes halos and all-to-all pieces, fills padding
and runs the tiled BatchNorm in Python; on the emulated phones that was about half of what the
model missed (docs/spatial.md). Here TileParallel itself runs as one member of a tile group
whose other members are silent: its collectives move nothing (an all-reduce leaves its input,
received halos and pieces are zeros), so what is timed is exactly the member's computation,
copies included, and none of its messages (the model's message and meeting terms).
"""

from __future__ import annotations

import phalanx

from .. import nn
from .comm import Group


class SilentGroup(Group):
    """Member `index` of a `size`-rank tile group in which nothing is communicated."""

    def __init__(self, size: int, index: int) -> None:  # no process group behind it
        if not 0 <= index < size:
            raise ValueError(f"SilentGroup: index {index} is not in a group of {size}")
        self.pg, self.ranks, self.index, self.solo = None, list(range(size)), index, False

    def all_reduce(self, t, op=None):
        return t

    def all_gather(self, bufs: list, buf) -> None:
        bufs[self.index].copy_(buf)  # the others' stay as allocated: zeros

    def exchange(self, sends: dict, recvs: dict, tag: int) -> None:
        for t in recvs.values():
            t.zero_()  # what a receive would overwrite; zeros keep the arithmetic ordinary


def profile_tile_step(
    model, input_shape, layers: int, grid, groups=(), data_parallel: int = 1, repeats: int = 3
) -> float:
    """Seconds of forward+backward of `model`'s first `layers` layers as the slowest member
    of a rows x cols tile group runs them (TileParallel, output as the planner picks it) on
    one replica's batch (input_shape's batch / data_parallel), messages left out. The
    model's parameters, gradients and BatchNorm statistics are left as they were."""
    from .planner import _median_time
    from .tile_parallel import TileParallel

    rows, cols = (int(v) for v in grid)
    size = rows * cols
    n, c, h, w = input_shape
    if data_parallel < 1 or n % data_parallel:
        raise ValueError(
            f"profile_tile_step: data_parallel={data_parallel} must divide the batch of {n}"
        )
    per_replica = n // data_parallel
    front = nn.Sequential(*list(model)[:layers])
    output = "batch" if per_replica >= size else "full"
    saved = {k: v.clone() for k, v in front.state_dict().items()}
    grads = [p.grad for p in front.parameters()]
    x = phalanx.randn(per_replica, c, h, w)
    slowest = 0.0
    try:
        for index in range(size):
            tiles = TileParallel(front, (rows, cols), SilentGroup(size, index), output, groups)
            slowest = max(slowest, _median_time(lambda t=tiles: t(x).sum().backward(), repeats))
    finally:
        with phalanx.no_grad():
            for k, v in front.state_dict().items():
                v.copy_(saved[k])
        for p, g in zip(front.parameters(), grads):
            p.grad = g
    return slowest
