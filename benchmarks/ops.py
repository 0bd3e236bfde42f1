"""Per-op forward and backward times: phalanx against PyTorch, alternated side by side.

Backward gets the gradients of the input and of the parameters for a fixed random output
gradient; each round runs a fresh forward (not timed in the backward column).

Rows marked "after conv" feed the op what it sees inside a model: the input and the output
gradient are a convolution's output (an identity 1x1 convolution of the same values), so
phalanx's are in the convolution's blocked layout (nChw16c / nChw8c on x86-64) and torch's in
its own (NCHW). The other rows start from plain NCHW tensors made from numpy.
"""

from __future__ import annotations

import time

import numpy as np

from _common import Worker, alternate, median, phase_medians, ratio

# name -> (kind, input shape, parameters); the quick shapes keep a smoke run short
OPS_FULL = {
    "conv3x3 s1 64->64 @56": ("conv", (16, 64, 56, 56), dict(cout=64, k=3, stride=1, groups=1)),
    "conv3x3 s2 64->128 @56": ("conv", (16, 64, 56, 56), dict(cout=128, k=3, stride=2, groups=1)),
    "depthwise3x3 s1 256 @28": (
        "conv",
        (16, 256, 28, 28),
        dict(cout=256, k=3, stride=1, groups=256),
    ),
    "batchnorm train 64 @56": ("bn", (16, 64, 56, 56), {}),
    "batchnorm train 64 @56 after conv": ("bn", (16, 64, 56, 56), dict(after_conv=True)),
    "maxpool3x3 s2 64 @112": ("maxpool", (16, 64, 112, 112), {}),
    "maxpool3x3 s2 64 @112 after conv": ("maxpool", (16, 64, 112, 112), dict(after_conv=True)),
    "avgpool3x3 s2 64 @112": ("avgpool", (16, 64, 112, 112), {}),
    "avgpool3x3 s2 64 @112 after conv": ("avgpool", (16, 64, 112, 112), dict(after_conv=True)),
    "linear 2048->1000 b64": ("linear", (64, 2048), dict(cout=1000)),
    # the phone operating point (issue 17): LeNet-5's first fully connected layer at batch 32,
    # where per-call overhead, not the GEMM, decides
    "linear 400->120 b32": ("linear", (32, 400), dict(cout=120)),
}
OPS_QUICK = {
    "conv3x3 s1 16->16 @28": ("conv", (8, 16, 28, 28), dict(cout=16, k=3, stride=1, groups=1)),
    "conv3x3 s2 16->32 @28": ("conv", (8, 16, 28, 28), dict(cout=32, k=3, stride=2, groups=1)),
    "depthwise3x3 s1 32 @28": ("conv", (8, 32, 28, 28), dict(cout=32, k=3, stride=1, groups=32)),
    "batchnorm train 16 @28": ("bn", (8, 16, 28, 28), {}),
    "maxpool3x3 s2 16 @28": ("maxpool", (8, 16, 28, 28), {}),
    "maxpool3x3 s2 16 @28 after conv": ("maxpool", (8, 16, 28, 28), dict(after_conv=True)),
    "avgpool3x3 s2 16 @28": ("avgpool", (8, 16, 28, 28), {}),
    "linear 256->128 b64": ("linear", (64, 256), dict(cout=128)),
}


def _arrays(kind: str, shape: tuple, p: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def randn(*s):
        return rng.standard_normal(s, dtype=np.float32)

    arrays = {"x": randn(*shape)}
    c = shape[1]
    if kind == "conv":
        arrays["w"] = randn(p["cout"], c // p["groups"], p["k"], p["k"]) * 0.1
    elif kind == "bn":
        arrays.update(gamma=np.ones(c, np.float32), beta=np.zeros(c, np.float32))
        arrays.update(mean=np.zeros(c, np.float32), var=np.ones(c, np.float32))
    elif kind == "linear":
        arrays.update(w=randn(p["cout"], c) * 0.05, b=np.zeros(p["cout"], np.float32))
    return arrays


def _forward_fn(F, kind: str, p: dict, t: dict):
    if kind == "conv":
        return lambda: F.conv2d(t["x"], t["w"], None, p["stride"], p["k"] // 2, 1, p["groups"])
    if kind == "bn":
        return lambda: F.batch_norm(
            t["x"], t["mean"], t["var"], t["gamma"], t["beta"], training=True
        )
    if kind == "maxpool":
        return lambda: F.max_pool2d(t["x"], 3, 2, 1)
    if kind == "avgpool":
        return lambda: F.avg_pool2d(t["x"], 3, 2, 1)
    if kind == "linear":
        return lambda: F.linear(t["x"], t["w"], t["b"])
    raise ValueError(kind)


def _identity_conv(fw, F, channels: int):
    """x -> the same values as a 1x1 convolution's output (in the layout a convolution writes)."""
    eye = fw.from_numpy(np.eye(channels, dtype=np.float32).reshape(channels, channels, 1, 1))

    def convert(v):
        with fw.no_grad():
            out = F.conv2d(v, eye)
        assert np.array_equal(out.numpy(), v.numpy()), "identity convolution changed the values"
        # numpy() may have read the phalanx tensor back to plain: convolve again, unread
        with fw.no_grad():
            return F.conv2d(v, eye)

    return convert


def _contender(framework: str, kind: str, shape: tuple, p: dict):
    arrays = _arrays(kind, shape, p)
    if framework == "phalanx":
        import phalanx as fw
        import phalanx.nn.functional as F

        def to_tensor(a):
            return fw.from_numpy(a.copy())
    else:
        import torch as fw
        import torch.nn.functional as F

        def to_tensor(a):
            return fw.from_numpy(a.copy())

    t = {k: to_tensor(v) for k, v in arrays.items()}
    after_conv = _identity_conv(fw, F, shape[1]) if p.get("after_conv") else lambda v: v
    t["x"] = after_conv(t["x"])
    leaves = [t[k] for k in ("x", "w", "b", "gamma", "beta") if k in t]
    for leaf in leaves:
        leaf.requires_grad_(True)
    forward = _forward_fn(F, kind, p, t)
    with fw.no_grad():
        grad_out = after_conv(
            to_tensor(
                np.random.default_rng(1).standard_normal(tuple(forward().shape), dtype=np.float32)
            )
        )

    def run():
        for leaf in leaves:
            leaf.grad = None
        t0 = time.perf_counter()
        y = forward()
        t1 = time.perf_counter()
        y.backward(grad_out)
        t2 = time.perf_counter()
        return {"forward": t1 - t0, "backward": t2 - t1}

    return run


def op_command(framework: str, cmd: dict, state: dict) -> dict:
    """Runs inside a worker process: one forward + backward of the named op."""
    ops = OPS_QUICK if cmd["quick"] else OPS_FULL
    if cmd["name"] not in state:
        kind, shape, p = ops[cmd["name"]]
        state[cmd["name"]] = _contender(framework, kind, shape, p)
    return state[cmd["name"]]()


def bench_ops(threads: list[int], iters: int, warmup: int, quick: bool) -> list[dict]:
    rows = []
    for n in threads:
        args = ["--threads", str(n)]
        with (
            Worker(["--framework", "phalanx", *args]) as pw,
            Worker(["--framework", "torch", *args]) as tw,
        ):
            for name in OPS_QUICK if quick else OPS_FULL:
                cmd = {"cmd": "op", "name": name, "quick": quick}
                samples = alternate(
                    {
                        "phalanx": lambda pw=pw, cmd=cmd: pw.call(cmd),
                        "torch": lambda tw=tw, cmd=cmd: tw.call(cmd),
                    },
                    iters,
                    warmup,
                )
                pm, tm = phase_medians(samples["phalanx"]), phase_medians(samples["torch"])
                pairs = list(zip(samples["phalanx"], samples["torch"], strict=True))
                rows.append(
                    {
                        "op": name,
                        "threads": n,
                        "phalanx_ms": {k: v * 1e3 for k, v in pm.items()},
                        "torch_ms": {k: v * 1e3 for k, v in tm.items()},
                        # torch time / phalanx time per round: > 1 means phalanx is faster
                        "speedup_forward": median(
                            [ratio(b["forward"], a["forward"]) for a, b in pairs]
                        ),
                        "speedup_backward": median(
                            [ratio(b["backward"], a["backward"]) for a, b in pairs]
                        ),
                    }
                )
    return rows
