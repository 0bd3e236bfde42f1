"""Rank-side workloads of test_spatial.py: tiled training against the unpartitioned module,
every case on every rank, several SGD steps (imported by _spawn.run_ranks)."""

from __future__ import annotations

import numpy as np

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
from phalanx.spatial import TileParallel

STEPS = 3
LR = 0.05


def net(kind: str):
    """Small spatial stacks covering the layer kinds the issue lists."""
    if kind == "plain":  # stride, dilation, BN, max pool with padding
        return nn.Sequential(
            nn.Conv2d(
                3, 4, 3, padding=1, bias=False
            ),  # a bias before BN has a gradient of 0 + noise
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(4, 5, 3, stride=2, padding=2, dilation=2, bias=False),
            nn.BatchNorm2d(5),
            nn.LeakyReLU(0.1),
        )
    if kind == "grouped":  # depthwise, grouped, avg pools with padding (both counts)
        return nn.Sequential(
            nn.Conv2d(4, 4, 3, padding=1, groups=4),
            nn.AvgPool2d(3, 2, 1, count_include_pad=False),
            nn.Conv2d(4, 6, 3, padding=1, groups=2),
            nn.ReLU6(),
            nn.AvgPool2d(2, 1, 1),
            nn.Conv2d(6, 3, 1, stride=2, bias=False),
            nn.BatchNorm2d(3),
        )
    if kind == "same":  # padding="same", a stride-3 conv without padding, Dropout(0)
        return nn.Sequential(
            nn.Conv2d(3, 4, 5, padding="same"),
            nn.Tanh(),
            nn.Dropout(0.0),
            nn.Conv2d(4, 4, 5, stride=3),
            nn.Sigmoid(),
        )
    raise ValueError(kind)


def channels(kind: str) -> int:
    return 4 if kind == "grouped" else 3


def compare(what, got, want, errors, tol=2e-4):
    got = np.asarray(got.detach().numpy() if hasattr(got, "detach") else got)
    want = np.asarray(want.detach().numpy() if hasattr(want, "detach") else want)
    if got.shape != want.shape:
        errors.append(f"{what}: shape {got.shape} != {want.shape}")
        return
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    if err > tol * (1 + scale):
        errors.append(f"{what}: max error {err:.3g} (scale {scale:.3g})")


def run_case(case, group=None, dp_group=None, dp_index=0, dp_size=1):
    """Trains a TileParallel copy and the plain module side by side; returns the mismatches."""
    kind, size, grid, groups, output = case
    phalanx.manual_seed(7)
    ref = net(kind)
    phalanx.manual_seed(7)
    tiled = TileParallel(net(kind), grid, process_group=group, output=output, groups=groups)
    model = tiled
    if dp_group is not None:  # data-parallel between tile groups
        from phalanx.nn.parallel import DistributedDataParallel as DDP

        model = DDP(tiled, process_group=dp_group)
    ref.train()
    tiled.train()
    opt_ref = phalanx.optim.SGD(ref.parameters(), lr=LR)
    opt_tiled = phalanx.optim.SGD(tiled.parameters(), lr=LR)
    members = grid[0] * grid[1]
    me = dist.get_rank(group) if members > 1 else 0
    errors = []
    rng = np.random.default_rng(11)
    batch = max(4, members)
    for step in range(STEPS):
        # dp_size replicas each get their own batch; the reference sees all of them
        xs = rng.standard_normal((dp_size * batch, channels(kind), *size)).astype(np.float32)
        x_ref = phalanx.tensor(xs, requires_grad=True)
        y_ref = ref(x_ref)
        up = rng.standard_normal(tuple(y_ref.shape)).astype(np.float32)
        (y_ref * phalanx.tensor(up)).sum().backward()
        x = phalanx.tensor(xs[dp_index * batch : (dp_index + 1) * batch], requires_grad=True)
        y = model(x)
        mine = up[dp_index * batch : (dp_index + 1) * batch]
        # The loss of the reference is the sum over all replicas; DDP averages over dp_size,
        # output="batch" over the tile group: the gradient is scaled to match.
        scale = dp_size
        if output == "batch":
            lo, hi = phalanx.spatial.split(batch, members)[me]
            mine = mine[lo:hi]
            want_y = y_ref[dp_index * batch + lo : dp_index * batch + hi]
            scale *= members
        else:
            want_y = y_ref[dp_index * batch : (dp_index + 1) * batch]
        compare(f"step {step} output", y, want_y, errors)
        (y * phalanx.tensor(mine)).sum().backward()
        want_xg = x_ref.grad[dp_index * batch : (dp_index + 1) * batch] * (dp_size / scale)
        compare(f"step {step} input grad", x.grad, want_xg, errors)
        for (name, p), q in zip(tiled.module.named_parameters(), ref.parameters()):
            compare(f"step {step} grad of {name}", p.grad, q.grad * (1.0 / scale), errors)
            q.grad.mul_(1.0 / scale)
        for (name, b), c in zip(tiled.module.named_buffers(), ref.buffers()):
            compare(f"step {step} buffer {name}", b, c, errors)
        opt_ref.step()
        opt_tiled.step()
        opt_ref.zero_grad()
        opt_tiled.zero_grad()
    # evaluation mode (running statistics, no graph) after training
    ref.eval()
    tiled.eval()
    xs = rng.standard_normal((dp_size * batch, channels(kind), *size)).astype(np.float32)
    with phalanx.no_grad():
        want = ref(phalanx.tensor(xs))
        got = model(phalanx.tensor(xs[dp_index * batch : (dp_index + 1) * batch]))
    if output == "batch":
        lo, hi = phalanx.spatial.split(batch, members)[me]
        want = want[dp_index * batch + lo : dp_index * batch + hi]
    else:
        want = want[dp_index * batch : (dp_index + 1) * batch]
    compare("eval output", got, want, errors)
    return [f"{case}: {e}" for e in errors]


def cases_on_world(rank, world, cases):
    errors = []
    for case in cases:
        errors += run_case(case)
    assert not errors, "\n".join(errors)
    return True


def hybrid(rank, world, cases):
    """2 tile groups of 2 ranks, data-parallel across them."""
    tile_groups = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    dp_groups = [dist.new_group([0, 2]), dist.new_group([1, 3])]
    mine = tile_groups[rank // 2]
    dp = dp_groups[rank % 2]
    errors = []
    for case in cases:
        errors += run_case(case, group=mine, dp_group=dp, dp_index=rank // 2, dp_size=2)
    assert not errors, "\n".join(errors)
    return True


def different_inputs(rank, world):
    t = TileParallel(net("plain"), (1, 2), output="full", check_inputs=True)
    x = phalanx.ones(2, 3, 9, 9) * (1.0 + rank)
    try:
        t(x)
    except ValueError as e:
        return str(e)
    return "no error"


def wrong_group_size(rank, world):
    messages = []
    try:
        TileParallel(net("plain"), (2, 2))
    except ValueError as e:
        messages.append(str(e))
    other = dist.new_group([0])  # rank 1 is not in it
    try:
        TileParallel(net("plain"), (1, 1), process_group=other)
        messages.append("member" if rank == 0 else "no error")
    except ValueError as e:
        messages.append(str(e))
    return messages


def activation_memory(rank, world, grid):
    """Bytes a forward leaves allocated for its backward (the activations, the output aside),
    for the whole stack on one rank and for this rank's tile."""
    phalanx.manual_seed(0)
    stack = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 4, 3, padding=1),  # saves its input, not its output (which is excluded)
    )
    x = phalanx.randn(4, 3, 64, 64)

    def held(model):
        base = phalanx.memory_stats()["allocated_bytes"]
        y = model(x)
        grown = phalanx.memory_stats()["allocated_bytes"] - base
        out = y.numel() * 4
        y.sum().backward()
        return grown - out

    one = held(stack)
    return one, held(TileParallel(stack, grid, output="full"))


def dropout_mask(rank, world):
    """Dropout in training: one mask over the whole map, drawn alike on every rank (same
    seed) and cut to each tile: the assembled output is the input times that mask."""
    stack = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Dropout(0.5), nn.Conv2d(3, 2, 1))
    tiled = TileParallel(stack, (1, world), output="full")
    x = phalanx.randn(2, 2, 9, 11)
    phalanx.manual_seed(5)
    y = tiled(x)
    phalanx.manual_seed(5)
    keep = (phalanx.rand(2, 3, 9, 11) >= 0.5).float() * 2.0
    with phalanx.no_grad():
        want = stack[2](stack[0](x) * keep)
    errors = []
    compare("dropout output", y, want, errors)
    assert not errors, errors
    return True
