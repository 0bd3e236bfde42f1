"""profile_tile_step(): a tile step's own computation, timed on one process.

The planner's compute for tiled layers is each plain layer's profiled time scaled to a tile's
area. A tile step also copies tile regions, pastes halos and all-to-all pieces, fills padding
and runs the tiled BatchNorm in Python; on the emulated phones that was about half of what the
model missed (docs/spatial.md). Here TileParallel itself runs as one member of a tile group
whose other members are silent: its collectives move nothing (an all-reduce leaves its input,
received halos and pieces are zeros), so what is timed is exactly the member's computation,
copies included, and none of its messages (the model's message and meeting terms).

profile_tile_meetings(): what the tile group's meetings add to that step, on the group's
ranks. Each rank runs its own member twice: silent, and with a one-float all-reduce over the
real group at every collective (MeetingGroup) -- the step's own stretches of computation
between meetings, its meetings, none of its bytes. On the emulated phones a meeting inside a
step cost 5-7 ms (ranks throttled by their CPU quota arrive apart, and a ring's hops wait
for a throttled peer), where tiny collectives back to back (planner.measure_sync) measured
0.3-1.3 ms a message from run to run: the calibration did not see the step's pattern.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import phalanx

from .. import distributed as dist
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


class MeetingGroup(SilentGroup):
    """A SilentGroup member that meets its real peers wherever the tile group would
    communicate: a one-float all-reduce over `process_group` after each collective's silent
    stand-in. `meetings` counts them."""

    def __init__(self, process_group, size: int, index: int) -> None:
        super().__init__(size, index)
        self._real = process_group
        self._token = phalanx.zeros(1)
        self.meetings = 0

    def _meet(self) -> None:
        dist.all_reduce(self._token, group=self._real)
        self.meetings += 1

    def all_reduce(self, t, op=None):
        self._meet()
        return t

    def all_gather(self, bufs: list, buf) -> None:
        super().all_gather(bufs, buf)
        self._meet()

    def exchange(self, sends: dict, recvs: dict, tag: int) -> None:
        super().exchange(sends, recvs, tag)
        self._meet()


@contextmanager
def _model_kept(front):
    """Leaves `front`'s parameters, gradients and BatchNorm statistics as they were."""
    saved = {k: v.clone() for k, v in front.state_dict().items()}
    grads = [p.grad for p in front.parameters()]
    try:
        yield
    finally:
        with phalanx.no_grad():
            for k, v in front.state_dict().items():
                v.copy_(saved[k])
        for p, g in zip(front.parameters(), grads):
            p.grad = g


def _tile_setup(model, input_shape, layers: int, grid, data_parallel: int, caller: str):
    """What both profiles run: the grid, its size, the first `layers` layers, the output mode
    the planner picks for one replica's batch, and a random batch of that size."""
    rows, cols = (int(v) for v in grid)
    n = input_shape[0]
    if data_parallel < 1 or n % data_parallel:
        raise ValueError(f"{caller}: data_parallel={data_parallel} must divide the batch of {n}")
    per_replica = n // data_parallel
    front = nn.Sequential(*list(model)[:layers])
    output = "batch" if per_replica >= rows * cols else "full"
    return (rows, cols), rows * cols, front, output, phalanx.randn(per_replica, *input_shape[1:])


def profile_tile_step(
    model, input_shape, layers: int, grid, groups=(), data_parallel: int = 1, repeats: int = 3
) -> float:
    """Seconds of forward+backward of `model`'s first `layers` layers as the slowest member
    of a rows x cols tile group runs them (TileParallel, output as the planner picks it) on
    one replica's batch (input_shape's batch / data_parallel), messages left out. The
    model's parameters, gradients and BatchNorm statistics are left as they were."""
    from .planner import _median_time
    from .tile_parallel import TileParallel

    grid, size, front, output, x = _tile_setup(
        model, input_shape, layers, grid, data_parallel, "profile_tile_step"
    )
    slowest = 0.0
    with _model_kept(front):
        for index in range(size):
            tiles = TileParallel(front, grid, SilentGroup(size, index), output, groups)
            slowest = max(slowest, _median_time(lambda t=tiles: t(x).sum().backward(), repeats))
    return slowest


def profile_tile_meetings(
    model,
    input_shape,
    layers: int,
    grid,
    groups=(),
    data_parallel: int = 1,
    process_group=None,
    repeats: int = 5,
) -> float:
    """Seconds the meetings of a rows x cols tile group add to its tiled layers'
    forward+backward, measured on the group's ranks (all of `process_group`, None: the
    world, call it at once; it must have rows x cols ranks): the step's meetings, each
    a one-float all-reduce, against the slowest member's step alone, both the median of
    `repeats` taken in turns. The bytes the messages would carry are left out (the cost
    model's link terms). Every rank returns the same number; the model is left as it was."""
    from .planner import _median
    from .tile_parallel import TileParallel

    if not dist.is_initialized():
        raise ValueError("profile_tile_meetings: needs the tile group's ranks (no process group)")
    grid, size, front, output, x = _tile_setup(
        model, input_shape, layers, grid, data_parallel, "profile_tile_meetings"
    )
    if dist.get_world_size(process_group) != size:
        raise ValueError(
            f"profile_tile_meetings: the group has {dist.get_world_size(process_group)} ranks, "
            f"a {grid[0]}x{grid[1]} grid needs {size}"
        )
    index = dist.get_rank(process_group)

    def seconds(tiles):
        start = time.perf_counter()
        tiles(x).sum().backward()
        return time.perf_counter() - start

    alone, meeting = [], []
    with _model_kept(front):
        silent = TileParallel(front, grid, SilentGroup(size, index), output, groups)
        meets = TileParallel(front, grid, MeetingGroup(process_group, size, index), output, groups)
        seconds(silent)  # the first pass creates the kernels' primitives
        seconds(meets)
        for _ in range(repeats):  # in turns: a drift of the machine's speed hits both
            dist.barrier(group=process_group)
            alone.append(seconds(silent))
            dist.barrier(group=process_group)
            meeting.append(seconds(meets))
    slowest = phalanx.tensor([_median(alone)])
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX, group=process_group)
    met = phalanx.tensor([_median(meeting)])
    dist.all_reduce(met, group=process_group)
    return max(met.item() / size - slowest.item(), 0.0)
