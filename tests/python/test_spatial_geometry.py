"""Tile geometry (phalanx.spatial.geometry): intervals traced back through convolutions and
pools, clamped to the map with the padding a border tile adds; BatchNorm's owned blocks;
errors for grids the map cannot hold. Pure functions, one process."""

import pytest

import phalanx.nn as nn
from phalanx.spatial import TileParallel, plan_tiles, split
from phalanx.spatial.geometry import AxisOp, LayerGeometry, map_sizes
from phalanx.spatial.layers import describe


def conv(k, s=1, p=0, d=1, name="Conv2d"):
    a = AxisOp(k, s, d, p, p)
    return LayerGeometry(name, a, a)


def test_split_is_even_with_the_remainder_first():
    assert split(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert split(2, 2) == [(0, 1), (1, 2)]


def test_conv_halo_and_border_padding():
    (t0, t1) = [p.rows[0] for p in plan_tiles([conv(3, p=1)], (10, 10), (2, 1))]
    assert (t0.out, t0.take, t0.pad) == ((0, 5), (0, 6), (1, 0))  # zeros only at the top
    assert (t1.out, t1.take, t1.pad) == ((5, 10), (4, 10), (0, 1))  # and at the bottom


def test_pool_rule_and_stride_dilation():
    # DeepThings' pool rule [o1*s, o2*s + s - 1]
    pool = conv(2, s=2, name="MaxPool2d")
    steps = [p.rows[0] for p in plan_tiles([pool], (8, 8), (2, 1))]
    assert [s.take for s in steps] == [(0, 4), (4, 8)]
    # conv k3, stride 2, dilation 2, padding 2 on 11: 6 outputs; the last reads rows 8..12
    dil = plan_tiles([conv(3, s=2, p=2, d=2)], (11, 11), (2, 1))[1].rows[0]
    assert dil.out == (3, 6) and dil.take == (4, 11) and dil.pad == (0, 2)


def test_two_layers_trace_back_and_tiles_partition_odd_outputs():
    layers = [conv(3, p=1), conv(3, s=2, p=1, name="MaxPool2d"), conv(5, s=1, p=0)]
    sizes = map_sizes(layers, (57, 83))
    plans = plan_tiles(layers, (57, 83), (2, 3))
    assert len(plans) == 6
    rows = sorted({p.rows[-1].out for p in plans})
    cols = sorted({p.cols[-1].out for p in plans})
    assert rows[0][0] == 0 and rows[-1][1] == sizes[-1][0]
    assert cols[0][0] == 0 and cols[-1][1] == sizes[-1][1]
    assert all(a[1] == b[0] for a, b in zip(cols, cols[1:]))
    # each layer reads exactly what the next layer's input interval needs
    for p in plans:
        for axis in (p.rows, p.cols):
            for before, after in zip(axis, axis[1:]):
                assert after.take[0] >= before.out[0] and after.take[1] <= before.out[1]


def test_batchnorm_blocks_cover_positions_no_output_needs():
    # BN, then a 1x1 stride-2 conv: odd rows of the BN map feed nothing, but count in the stats
    bn = LayerGeometry("BatchNorm2d", owns=True)
    plans = plan_tiles([bn, conv(1, s=2)], (10, 10), (2, 1))
    owned = [p.rows[0].owned for p in plans]
    assert owned == [(0, 5), (5, 10)]
    for p in plans:
        lo, hi = p.rows[0].out
        assert lo <= p.rows[0].owned[0] and p.rows[0].owned[1] <= hi


def test_grid_larger_than_the_map_is_refused_naming_the_layer():
    with pytest.raises(
        ValueError,
        match=r"grid 4x1 is larger than the feature map allows.*layer 1 \(MaxPool2d\) is 3x3",
    ):
        plan_tiles([conv(3, p=1), conv(2, s=2, name="MaxPool2d")], (6, 6), (4, 1))
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2d\) has no output for an input of 2x2"):
        plan_tiles([conv(5)], (2, 2), (1, 1))


def test_unsupported_layers_are_refused_at_wrap_time_by_name():
    with pytest.raises(TypeError, match=r"layer 2 \(Flatten\) cannot be split into tiles"):
        TileParallel(nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(), nn.Flatten()), (1, 1))
    with pytest.raises(TypeError, match="ceil_mode=True"):
        describe(nn.MaxPool2d(2, ceil_mode=True), 0)
    with pytest.raises(TypeError, match="must be an nn.Sequential"):
        TileParallel(nn.Conv2d(1, 1, 3), (1, 1))
    with pytest.raises(ValueError, match=r"groups=\[5\] must be layer indices in \[1, 1\]"):
        TileParallel(nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU()), (1, 1), groups=[5])
    with pytest.raises(ValueError, match="output='all' is not one of"):
        TileParallel(nn.Sequential(nn.Conv2d(1, 1, 3)), (1, 1), output="all")


class _RecordingGroup:
    """Stands in for a 2x2 tile group: records what rank `index` sends at a boundary."""

    def __init__(self, index, size):
        self.index, self.size, self.sent = index, size, {}

    def __len__(self):
        return self.size

    def exchange(self, sends, recvs, tag):
        self.sent = {j: tuple(t.shape) for j, t in sends.items()}


def test_a_group_boundary_sends_only_the_halo():
    import phalanx
    from phalanx.spatial.comm import HaloExchange

    first = [conv(3, p=1)]
    second = [conv(3, p=1), conv(3, p=1)]  # reads 2 rows/cols beyond its own block
    size, grid = (20, 30), (2, 2)
    owned = [p.output_region for p in plan_tiles(first, size, grid)]
    needed = [p.input_region for p in plan_tiles(second, size, grid)]
    group = _RecordingGroup(0, 4)
    (r0, r1), (c0, c1) = owned[0]
    block = phalanx.randn(1, 3, r1 - r0, c1 - c0)
    HaloExchange.apply(block, group, owned, needed)
    # rank 0 (top left, 10x15) gives 2 rows to rank 2 below, 2 cols to rank 1, 2x2 to rank 3
    assert group.sent == {1: (1, 3, 10, 2), 2: (1, 3, 2, 15), 3: (1, 3, 2, 2)}
