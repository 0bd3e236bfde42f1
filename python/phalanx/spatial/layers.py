"""The layers a fused tile group accepts: their geometry, and how one tile runs them.

A tile runs every layer without the layer's own padding: it reads the input interval the
geometry names and adds the padding itself, only where the interval reaches past the map
(zeros, or -inf before a max pooling), so asymmetric padding at the image border is exact.
"""

from __future__ import annotations

import phalanx

from .. import nn
from .geometry import AxisOp, LayerGeometry

# Layers that act on each position alone: a tile applies them as they are.
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Identity)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_padding(m, k, d) -> list[tuple[int, int]]:
    if m.padding == "valid":
        return [(0, 0), (0, 0)]
    if m.padding == "same":  # torch puts the odd one at the end
        return [(t // 2, t - t // 2) for t in (d[0] * (k[0] - 1), d[1] * (k[1] - 1))]
    return [(p, p) for p in _pair(m.padding)]


def _axes(k, s, d, pads) -> tuple[AxisOp, AxisOp]:
    return tuple(AxisOp(k[i], s[i], d[i], pads[i][0], pads[i][1]) for i in range(2))


def describe(layer, index: int) -> LayerGeometry:
    """The geometry of `layer`; TypeError naming it when a tile group cannot hold it."""
    name = type(layer).__name__
    if isinstance(layer, nn.Conv2d):
        if getattr(layer, "padding_mode", "zeros") != "zeros":
            raise TypeError(
                f"layer {index} ({name}): padding_mode={layer.padding_mode!r} is not supported "
                "in a tile group (only 'zeros')"
            )
        k, s, d = _pair(layer.kernel_size), _pair(layer.stride), _pair(layer.dilation)
        rows, cols = _axes(k, s, d, _conv_padding(layer, k, d))
        return LayerGeometry(name, rows, cols)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        if layer.ceil_mode:
            raise TypeError(
                f"layer {index} ({name}): ceil_mode=True is not supported in a tile group"
            )
        if getattr(layer, "divisor_override", None) is not None:
            raise TypeError(f"layer {index} ({name}): divisor_override is not supported")
        k, s = _pair(layer.kernel_size), _pair(layer.stride)
        d = _pair(getattr(layer, "dilation", 1))
        p = _pair(layer.padding)
        rows, cols = _axes(k, s, d, [(p[0], p[0]), (p[1], p[1])])
        return LayerGeometry(name, rows, cols)
    if isinstance(layer, nn.BatchNorm2d):
        return LayerGeometry(name, owns=True)
    if isinstance(layer, ELEMENTWISE + (nn.Dropout,)):
        return LayerGeometry(name)
    supported = "Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, Dropout, " + ", ".join(
        c.__name__ for c in ELEMENTWISE
    )
    raise TypeError(
        f"layer {index} ({name}) cannot be split into tiles; a tile group holds only {supported}"
    )


def crop_and_pad(x, have, step_rows, step_cols, value: float = 0.0):
    """x covers rows have[0] and cols have[1] of the map: cut it to the interval the step takes
    and pad it by the step's padding with `value`."""
    (hr, hc) = have
    r0, r1 = step_rows.take
    c0, c1 = step_cols.take
    if (r0, r1) != hr:
        x = x.narrow(2, r0 - hr[0], r1 - r0)
    if (c0, c1) != hc:
        x = x.narrow(3, c0 - hc[0], c1 - c0)
    (pt, pb), (pl, pr) = step_rows.pad, step_cols.pad
    if pl or pr:
        n, c, h, _ = x.shape
        parts = [phalanx.full((n, c, h, pl), value)] if pl else []
        parts += [x] + ([phalanx.full((n, c, h, pr), value)] if pr else [])
        x = phalanx.cat(parts, 3)
    if pt or pb:
        n, c, _, w = x.shape
        parts = [phalanx.full((n, c, pt, w), value)] if pt else []
        parts += [x] + ([phalanx.full((n, c, pb, w), value)] if pb else [])
        x = phalanx.cat(parts, 2)
    return x


def prepare(x, have, step_rows, step_cols, strides, value: float = 0.0):
    """x (covering rows have[0], cols have[1]) made ready for a windowed op: cut to the taken
    interval, with the border padding the op should add itself (as its own symmetric padding,
    no copy) and what only a copy can add (cat, when the padding is asymmetric and the stride
    does not let the extra outputs be dropped). Returns (x, native padding, outputs to skip,
    whether a copy padded anything)."""
    x = crop_and_pad(x, have, _no_pad(step_rows), _no_pad(step_cols))
    native, skip, explicit = [0, 0], [0, 0], [(0, 0), (0, 0)]
    for axis, (step, s) in enumerate(zip((step_rows, step_cols), strides)):
        lo, hi = step.pad
        big = max(lo, hi)
        if (big - lo) % s == 0:  # the op pads `big` on both sides; drop the outputs it adds
            native[axis], skip[axis] = big, (big - lo) // s
        else:
            explicit[axis] = (lo, hi)
    copied = explicit != [(0, 0), (0, 0)]
    if copied:
        n_r, n_c = x.shape[2], x.shape[3]
        rows = _with_pad(step_rows, (0, n_r), explicit[0])
        cols = _with_pad(step_cols, (0, n_c), explicit[1])
        x = crop_and_pad(x, ((0, n_r), (0, n_c)), rows, cols, value)
    return x, tuple(native), tuple(skip), copied


def finish(y, skip, step_rows, step_cols):
    """The op's output cut to the outputs this tile produces."""
    n_r = step_rows.out[1] - step_rows.out[0]
    n_c = step_cols.out[1] - step_cols.out[0]
    if skip[0] or y.shape[2] != n_r:
        y = y.narrow(2, skip[0], n_r)
    if skip[1] or y.shape[3] != n_c:
        y = y.narrow(3, skip[1], n_c)
    return y


def _no_pad(step):
    from dataclasses import replace

    return replace(step, pad=(0, 0))


def _with_pad(step, take, pad):
    from dataclasses import replace

    return replace(step, take=take, pad=pad)


def _shift(step):
    """The step relative to its own taken interval (for a mask the size of that interval)."""
    from dataclasses import replace

    n = step.take[1] - step.take[0]
    return replace(step, take=(0, n))
