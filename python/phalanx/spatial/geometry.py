"""Tile geometry for fused-tile training: pure functions, no tensors.

A grid of rows x cols tiles is laid over the output of the last layer of a fused group and
traced back through the layers (DeepThings' rule): an output interval [lo, hi) of a layer with
kernel k, stride s, dilation d and leading padding p needs the input interval
[lo*s - p, (hi-1)*s - p + d*(k-1) + 1), clamped to the map; what falls outside the map is the
padding this tile must add itself (only at the image's true border).

Rows and columns are independent, so everything here works on one axis at a time. Intervals
are half-open (start, stop).

BatchNorm needs statistics over the whole map with every position counted once, so at a
BatchNorm layer each tile also *owns* one block of an even split of that map, and its region
is widened to cover it (a stride can leave positions no output needs, which the statistics
still count).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AxisOp:
    """One layer along one axis. An elementwise layer is kernel 1, stride 1, no padding."""

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad_lo: int = 0
    pad_hi: int = 0

    def out_size(self, n: int) -> int:
        span = self.dilation * (self.kernel - 1) + 1
        return (n + self.pad_lo + self.pad_hi - span) // self.stride + 1

    def needs(self, lo: int, hi: int) -> tuple[int, int]:
        """Unclamped input interval that outputs [lo, hi) read."""
        start = lo * self.stride - self.pad_lo
        stop = (hi - 1) * self.stride - self.pad_lo + self.dilation * (self.kernel - 1) + 1
        return start, stop


@dataclass(frozen=True)
class LayerGeometry:
    """A layer's geometry on both axes; `owns` marks a layer whose output map is split evenly
    into owned blocks (BatchNorm statistics)."""

    name: str
    rows: AxisOp = field(default_factory=AxisOp)
    cols: AxisOp = field(default_factory=AxisOp)
    owns: bool = False


@dataclass(frozen=True)
class AxisStep:
    """What one tile does at one layer along one axis."""

    take: tuple[int, int]  # input interval read, within the map (clamped)
    pad: tuple[int, int]  # zeros (or -inf for max pooling) added before/after it
    out: tuple[int, int]  # output interval produced
    owned: tuple[int, int] | None  # owned block of the output (BatchNorm), else None
    map_size: int  # length of the whole output map along this axis


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """Even split of range(n) into `parts` intervals; the first n % parts get one more."""
    base, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def map_sizes(layers: list[LayerGeometry], size: tuple[int, int]) -> list[tuple[int, int]]:
    """(H, W) of the input and of every layer's output; ValueError naming the layer that has
    no output for this input size."""
    sizes = [tuple(size)]
    for i, g in enumerate(layers):
        h, w = sizes[-1]
        out = (g.rows.out_size(h), g.cols.out_size(w))
        if out[0] < 1 or out[1] < 1:
            raise ValueError(
                f"layer {i} ({g.name}) has no output for an input of {h}x{w} (it would be "
                f"{out[0]}x{out[1]})"
            )
        sizes.append(out)
    return sizes


def axis_plan(ops: list[AxisOp], owns: list[bool], sizes: list[int], index: int, parts: int):
    """The steps of tile `index` of `parts` along one axis, first layer first.

    sizes[0] is the input length, sizes[i+1] layer i's output length."""
    last = len(ops)
    need = split(sizes[last], parts)[index]
    steps: list[AxisStep] = []
    for i in range(last - 1, -1, -1):
        owned = None
        if owns[i]:
            owned = split(sizes[i + 1], parts)[index]
            need = (min(need[0], owned[0]), max(need[1], owned[1]))
        start, stop = ops[i].needs(*need)
        n_in = sizes[i]
        if stop <= 0 or start >= n_in:  # every window lies in the padding
            at = 0 if stop <= 0 else n_in
            take, pad = (at, at), (stop - start, 0)
        else:
            take = (max(start, 0), min(stop, n_in))
            pad = (take[0] - start, stop - take[1])
        steps.append(AxisStep(take, pad, need, owned, sizes[i + 1]))
        need = take
    steps.reverse()
    return steps


@dataclass(frozen=True)
class TilePlan:
    """Tile (row, col) of a grid: per layer, its steps along rows and along columns."""

    row: int
    col: int
    rows: list[AxisStep]
    cols: list[AxisStep]

    @property
    def input_region(self) -> tuple[tuple[int, int], tuple[int, int]]:
        return self.rows[0].take, self.cols[0].take

    @property
    def output_region(self) -> tuple[tuple[int, int], tuple[int, int]]:
        return self.rows[-1].out, self.cols[-1].out


def check_grid(layers: list[LayerGeometry], sizes: list[tuple[int, int]], grid) -> None:
    """ValueError when the grid has more rows/cols than the output map (or a BatchNorm map,
    which is split too) has positions."""
    rows, cols = grid
    if rows < 1 or cols < 1:
        raise ValueError(f"grid {tuple(grid)}: rows and cols must be at least 1")
    for i, g in enumerate(layers):
        if g.owns or i == len(layers) - 1:
            h, w = sizes[i + 1]
            if rows > h or cols > w:
                raise ValueError(
                    f"grid {rows}x{cols} is larger than the feature map allows: the output of "
                    f"layer {i} ({g.name}) is {h}x{w}, so at most {min(rows, h)}x{min(cols, w)} "
                    "tiles have a position of their own"
                )


def plan_tiles(layers: list[LayerGeometry], size: tuple[int, int], grid) -> list[TilePlan]:
    """Every tile of `grid` (rows, cols) over the output of `layers` for an input of `size`
    (H, W), in rank order (row-major)."""
    if not layers:
        raise ValueError("plan_tiles: no layers")
    sizes = map_sizes(layers, size)
    check_grid(layers, sizes, grid)
    rows, cols = grid
    owns = [g.owns for g in layers]
    row_plans = [
        axis_plan([g.rows for g in layers], owns, [s[0] for s in sizes], r, rows)
        for r in range(rows)
    ]
    col_plans = [
        axis_plan([g.cols for g in layers], owns, [s[1] for s in sizes], c, cols)
        for c in range(cols)
    ]
    return [TilePlan(r, c, row_plans[r], col_plans[c]) for r in range(rows) for c in range(cols)]
