"""DistributedDataParallel on 2 and 4 local ranks against single-process training.

The reference for data parallelism is the same model trained in one process on the
concatenated batch: after every SGD step every rank's parameters must equal it (float
tolerance). Ranks start from different random initialisations, so equality also proves the
broadcast at wrap time. Also: weighting by unequal batch shares, no_sync accumulation,
parameters used on one rank only, BatchNorm buffers, overlap of the all-reduce with backward,
16-bit compression hooks (their error measured), and the misuse errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from _spawn import run_ranks

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.distributed.algorithms.ddp_comm_hooks import bf16_compress_hook, fp16_compress_hook
from phalanx.nn.parallel import DistributedDataParallel as DDP

STEPS = 3
LR = 0.1


class Net(nn.Module):
    """Conv layers with odd sizes, a stride, a linear head, and an optional extra branch."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2)
        self.fc = nn.Linear(8 * 3 * 3, 5)
        self.extra = nn.Linear(8 * 3 * 3, 5)

    def forward(self, x, use_extra=False):
        h = F.relu(self.conv2(F.relu(self.conv1(x)))).reshape(x.shape[0], -1)
        out = self.fc(h)
        return out + self.extra(h) if use_extra else out


def make_net(seed: int) -> Net:
    phalanx.manual_seed(seed)
    return Net()


def global_batch(n: int, seed: int = 123):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, size=n).astype(np.int64)
    return x, y


def params_of(model) -> dict:
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters()}


def slices(sizes):
    starts = np.cumsum([0] + list(sizes))
    return [slice(starts[i], starts[i + 1]) for i in range(len(sizes))]


# ------------------------------------------------------------------------------ rank side


def train_ranks(rank, world, sizes, weighting, bucket_mb, accumulate):
    model = make_net(seed=100 + rank)  # deliberately different: DDP must broadcast rank 0's
    ddp = DDP(
        model,
        bucket_cap_mb=bucket_mb,
        first_bucket_cap_mb=bucket_mb / 4,
        batch_weighting=weighting,
    )
    # Rank 0's initial weights are what the reference starts from.
    history = [params_of(model)]
    opt = phalanx.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    mine = slices(sizes)[rank]
    for step in range(STEPS):
        x, y = global_batch(sum(sizes), seed=step)
        xb, yb = phalanx.tensor(x[mine]), phalanx.tensor(y[mine])
        opt.zero_grad()
        if accumulate:
            # Two micro-batches: the first without communication.
            half = xb.shape[0] // 2
            with ddp.no_sync():
                F.cross_entropy(ddp(xb[:half]), yb[:half]).backward()
            F.cross_entropy(ddp(xb[half:]), yb[half:]).backward()
        else:
            F.cross_entropy(ddp(xb), yb).backward()
        opt.step()
        history.append(params_of(model))
    return history


def reference(start: dict, sizes, accumulate, world):
    model = Net()
    model.load_state_dict({k: phalanx.tensor(v) for k, v in start.items()})
    opt = phalanx.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    history = [params_of(model)]
    for step in range(STEPS):
        x, y = global_batch(sum(sizes), seed=step)
        opt.zero_grad()
        if accumulate:
            # Each rank's gradient is (mean over its first half) + (mean over its second half);
            # DDP averages over ranks.
            loss = 0
            for part in slices(sizes):
                xs, ys = x[part], y[part]
                half = xs.shape[0] // 2
                for a, b in ((0, half), (half, xs.shape[0])):
                    out = model(phalanx.tensor(xs[a:b]))
                    loss = loss + F.cross_entropy(out, phalanx.tensor(ys[a:b])) * (1.0 / world)
            loss.backward()
        else:
            F.cross_entropy(model(phalanx.tensor(x)), phalanx.tensor(y)).backward()
        opt.step()
        history.append(params_of(model))
    return history


def assert_same_history(got, want, what):
    for step, (g, w) in enumerate(zip(got, want)):
        for name in w:
            np.testing.assert_allclose(
                g[name], w[name], rtol=2e-5, atol=2e-6, err_msg=f"{what}: step {step}, {name}"
            )


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("world", [2, 4])
def test_ddp_matches_single_process_on_the_concatenated_batch(world):
    sizes = [4] * world
    # Small buckets: several all-reduces per step, launched in order while backward runs.
    results = run_ranks("test_ddp", "train_ranks", world, (sizes, "uniform", 0.002, False))
    want = reference(results[0][0], sizes, False, world)
    for rank, got in enumerate(results):
        assert_same_history(got, want, f"rank {rank} of {world}")


def test_unequal_batches_weighted_by_share_match_the_global_batch():
    sizes = [3, 7]  # a slow phone and a fast one
    results = run_ranks("test_ddp", "train_ranks", 2, (sizes, "local_batch", 25.0, False))
    want = reference(results[0][0], sizes, False, 2)
    for rank, got in enumerate(results):
        assert_same_history(got, want, f"rank {rank}")


def test_unequal_batches_with_uniform_weighting_do_not_match():
    """The control for the test above: plain averaging over-weights the small batch."""
    sizes = [3, 7]
    results = run_ranks("test_ddp", "train_ranks", 2, (sizes, "uniform", 25.0, False))
    want = reference(results[0][0], sizes, False, 2)
    with pytest.raises(AssertionError):
        assert_same_history(results[0], want, "rank 0")


def test_no_sync_accumulates_locally_then_reduces_the_sum():
    sizes = [6, 6]
    results = run_ranks("test_ddp", "train_ranks", 2, (sizes, "uniform", 0.002, True))
    want = reference(results[0][0], sizes, True, 2)
    for rank, got in enumerate(results):
        assert_same_history(got, want, f"rank {rank}")


def unused_on_one_rank(rank, world):
    model = make_net(seed=0)
    ddp = DDP(model, bucket_cap_mb=0.001)
    x, y = global_batch(8, seed=5)
    part = slices([4, 4])[rank]
    F.cross_entropy(
        ddp(phalanx.tensor(x[part]), use_extra=rank == 1), phalanx.tensor(y[part])
    ).backward()
    return {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


def test_parameter_used_on_one_rank_only():
    results = run_ranks("test_ddp", "unused_on_one_rank", 2)
    model = make_net(seed=0)
    x, y = global_batch(8, seed=5)
    loss = 0
    for rank, part in enumerate(slices([4, 4])):
        out = model(phalanx.tensor(x[part]), use_extra=rank == 1)
        loss = loss + F.cross_entropy(out, phalanx.tensor(y[part])) * 0.5
    loss.backward()
    for rank, grads in enumerate(results):
        for n, p in model.named_parameters():
            np.testing.assert_allclose(
                grads[n], p.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=f"rank {rank}: {n}"
            )
    assert np.abs(results[0]["extra.weight"]).sum() > 0  # rank 0 got rank 1's gradient


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x)).mean()


def buffers_follow_rank_0(rank, world):
    model = BNNet()
    ddp = DDP(model)
    x = phalanx.tensor(global_batch(4, seed=rank)[0])  # different data per rank
    ddp(x).backward()
    before = model.bn.running_mean.numpy().copy()
    model.eval()
    with phalanx.no_grad():
        ddp(x)  # forward broadcasts rank 0's buffers first
    return before, model.bn.running_mean.numpy().copy(), int(model.bn.num_batches_tracked.item())


def test_buffers_are_broadcast_from_rank_0_before_forward():
    results = run_ranks("test_ddp", "buffers_follow_rank_0", 2)
    (before0, after0, n0), (before1, after1, n1) = results
    assert not np.allclose(before0, before1)  # local statistics differed
    np.testing.assert_array_equal(after0, before0)
    np.testing.assert_array_equal(after1, before0)
    assert n0 == n1 == 1


def record_overlap(rank, world):
    model = make_net(seed=0)
    ddp = DDP(model, bucket_cap_mb=0.001, first_bucket_cap_mb=0.0005)
    events = []

    def hook(state, bucket):
        events.append(("launch", bucket.index()))
        return dist.algorithms.ddp_comm_hooks.allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, hook)
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(lambda _p, name=name: events.append(("grad", name)))
    x, y = global_batch(4, seed=1)
    F.cross_entropy(ddp(phalanx.tensor(x), use_extra=True), phalanx.tensor(y)).backward()
    return events, ddp.reducer.bucket_names()


def test_buckets_launch_in_order_while_backward_still_runs():
    events, buckets = run_ranks("test_ddp", "record_overlap", 2)[0]
    assert len(buckets) >= 3, buckets
    launches = [i for kind, i in events if kind == "launch"]
    assert launches == list(range(len(buckets)))
    first_launch = events.index(("launch", 0))
    last_grad = max(i for i, (kind, _) in enumerate(events) if kind == "grad")
    assert first_launch < last_grad, events  # communication started before backward ended
    # Reverse registration order: the head's parameters come first.
    assert buckets[0][0] == "extra.bias", buckets


def compressed_grads(rank, world):
    out = {}
    for name, hook in (("fp32", None), ("fp16", fp16_compress_hook), ("bf16", bf16_compress_hook)):
        model = make_net(seed=0)
        ddp = DDP(model)
        if hook is not None:
            ddp.register_comm_hook(None, hook)
        x, y = global_batch(16, seed=3)
        part = slices([8, 8])[rank]
        F.cross_entropy(ddp(phalanx.tensor(x[part])), phalanx.tensor(y[part])).backward()
        out[name] = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    return out


def test_fp16_and_bf16_compression_error_is_small_and_measured():
    results = run_ranks("test_ddp", "compressed_grads", 2)
    exact = results[0]["fp32"]
    scale = np.abs(exact).max()
    errors = {}
    for name, bound in (("fp16", 2e-3), ("bf16", 1.6e-2)):
        for rank in range(2):
            np.testing.assert_array_equal(results[rank][name], results[0][name])
        err = np.abs(results[0][name] - exact).max() / scale
        errors[name] = err
        assert 0 < err < bound, f"{name}: max error {err:.2e} of the largest gradient"
    # bf16 keeps 8 mantissa bits to fp16's 11: about 8x the error.
    assert errors["bf16"] > errors["fp16"]


def mismatched_models(rank, world):
    model = nn.Linear(4, 3 + rank)
    try:
        DDP(model)
    except ValueError as e:
        return str(e)
    return "no error"


def test_different_models_on_ranks_raise_naming_the_ranks():
    msgs = run_ranks("test_ddp", "mismatched_models", 2)
    assert "rank 0's model differs from rank(s) [1]" in msgs[0]
    assert "rank 1's model differs from rank(s) [0]" in msgs[1]


def rewrap_after_checkpoint(rank, world, sizes, path, eval_forward):
    """The PyTorch resume flow on one live model: train a step, checkpoint (rank 0), load the
    checkpoint into the same module and optimizer state, wrap the module again and train on
    through the new wrapper. The first wrapper's gradient hooks must not run any more: they
    failed the new wrapper's backward, or (after a forward without backward through the old
    wrapper, `eval_forward`) all-reduced every bucket a second time. Returns the parameter
    history, the errors the old wrapper gives, and how often it communicated after being
    replaced."""
    from phalanx.distributed.algorithms.ddp_comm_hooks import allreduce_hook

    model = make_net(seed=100 + rank)
    ddp = DDP(model)
    calls = []

    def counting_hook(state, bucket):
        calls.append(bucket.index())
        return allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, counting_hook)
    history = [params_of(model)]
    opt = phalanx.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    mine = slices(sizes)[rank]

    def step(ddp, opt, i):
        x, y = global_batch(sum(sizes), seed=i)
        opt.zero_grad()
        F.cross_entropy(ddp(phalanx.tensor(x[mine])), phalanx.tensor(y[mine])).backward()
        opt.step()
        history.append(params_of(model))

    step(ddp, opt, 0)
    if eval_forward:  # e.g. a validation pass with gradients still enabled
        ddp(phalanx.tensor(global_batch(2, seed=9)[0]))
    if rank == 0:
        phalanx.save({"model": model.state_dict(), "opt": opt.state_dict()}, path)
    dist.barrier()
    checkpoint = phalanx.load(path)
    model.load_state_dict(checkpoint["model"])
    old, calls_before = ddp, len(calls)
    ddp = DDP(model)
    opt = phalanx.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    opt.load_state_dict(checkpoint["opt"])
    for i in range(1, STEPS):
        step(ddp, opt, i)
    errors = []
    x, _ = global_batch(2, seed=0)
    for use in (lambda: old(phalanx.tensor(x)), lambda: old.register_comm_hook(None, None)):
        try:
            use()
        except RuntimeError as e:
            errors.append(str(e))
    return history, errors, len(calls) - calls_before


@pytest.mark.parametrize("eval_forward", [False, True])
def test_rewrapping_a_module_after_loading_a_checkpoint_retires_the_old_wrapper(
    tmp_path, eval_forward
):
    sizes = [4, 4]
    path = str(tmp_path / "ck.phx")
    results = run_ranks("test_ddp", "rewrap_after_checkpoint", 2, (sizes, path, eval_forward))
    (history, errors, old_calls), (history1, _, old_calls1) = results
    assert old_calls == old_calls1 == 0, "the replaced wrapper still all-reduced gradients"
    want = reference(history[0], sizes, accumulate=False, world=2)
    assert_same_history(history, want, "rank 0 after re-wrapping")
    assert_same_history(history1, want, "rank 1 after re-wrapping")
    assert len(errors) == 2, errors
    for e in errors:
        assert "wrapped again by a newer DistributedDataParallel" in e, e


def misuse(rank, world):
    model = make_net(seed=0)
    ddp = DDP(model)
    x, y = global_batch(2, seed=0)
    loss = F.cross_entropy(ddp(phalanx.tensor(x)), phalanx.tensor(y))
    loss.backward(retain_graph=True)
    errors = []
    try:
        loss.backward()
    except RuntimeError as e:
        errors.append(str(e))
    try:
        ddp.register_comm_hook(None, fp16_compress_hook)
        ddp.register_comm_hook(None, fp16_compress_hook)
    except RuntimeError as e:
        errors.append(str(e))
    return errors


def test_misuse_errors():
    errors = run_ranks("test_ddp", "misuse", 1)[0]
    assert "outside a synchronised iteration" in errors[0]
    assert "only be called once" in errors[1]


def test_bad_arguments():
    with pytest.raises(TypeError, match="wraps a phalanx.nn.Module"):
        DDP(object())
    with pytest.raises(ValueError, match="batch_weighting"):
        DDP(nn.Linear(2, 2), batch_weighting="speed")
