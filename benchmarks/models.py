"""Training throughput of whole models: phalanx against its PyTorch twin.

One iteration = forward + cross_entropy, backward, SGD (momentum 0.9) step + zero_grad, timed
as three phases. Both frameworks start from the same weights (phalanx's initial state_dict
copied into the torch twin through numpy), see the same random batch (fixed seed) and run
with the same number of threads.

torch is imported lazily: the fresh-process memory probes of phalanx never load it.
"""

from __future__ import annotations

import os
import time

import numpy as np

from _common import (
    Phases,
    Worker,
    alternate,
    child_result,
    median,
    phase_medians,
    ratio,
    run_child,
    vm_hwm_bytes,
)

# name -> title, batch, phone_batch, input shape (C, H, W), classes, conv-heavy (gets a GFLOP/s
# row). phone_batch is the phone operating point (issue 17): a cluster spreads one global batch
# over many phones, so each trains a small per-rank batch where per-op overhead decides.
MODELS: dict[str, dict] = {
    "lenet": dict(
        title="LeNet-5 28x28", batch=128, phone_batch=32, shape=(1, 28, 28), classes=10, conv=False
    ),
    "resnet18": dict(
        title="ResNet-18 CIFAR 32x32",
        batch=64,
        phone_batch=16,
        shape=(3, 32, 32),
        classes=10,
        conv=True,
    ),
    "mobilenet_v1": dict(
        title="MobileNet-v1 224x224",
        batch=16,
        phone_batch=8,
        shape=(3, 224, 224),
        classes=1000,
        conv=True,
    ),
    "resnet50": dict(
        title="ResNet-50 224x224",
        batch=8,
        phone_batch=4,
        shape=(3, 224, 224),
        classes=1000,
        conv=True,
    ),
}
POINTS = ("default", "phone")  # operating points: MODELS' batch and phone_batch


def point_batch(name: str, point: str) -> int:
    return MODELS[name]["phone_batch" if point == "phone" else "batch"]


def overhead_key(name: str, batch: int) -> str:
    """Key of an overhead run in the results: the model name at its default batch (as before
    the phone rows existed), name@batch otherwise."""
    return name if batch == MODELS[name]["batch"] else f"{name}@{batch}"


PHASES = ("forward", "backward", "optimizer")
COUNTERS = ("created", "reorder_data", "reorder_weights", "reorder_to_plain")
LR, MOMENTUM = 0.01, 0.9


def batch_arrays(name: str, batch: int | None = None, seed: int = 0):
    spec = MODELS[name]
    n = batch or spec["batch"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *spec["shape"]), dtype=np.float32)
    y = rng.integers(0, spec["classes"], n).astype(np.int64)
    return x, y


# --- phalanx -----------------------------------------------------------------------------


def build_phalanx(name: str):
    import phalanx
    import phalanx.models as pm

    phalanx.manual_seed(0)
    classes = MODELS[name]["classes"]
    if name == "lenet":
        return pm.LeNet5(classes)
    if name == "resnet18":
        return pm.resnet18(classes, stem="cifar")
    if name == "mobilenet_v1":
        return pm.mobilenet_v1(classes, 1.0)
    if name == "resnet50":
        return pm.resnet50(classes)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def _counters() -> dict[str, int]:
    from phalanx import _C

    c, r = _C._primitive_cache_stats(), _C._reorder_counts()
    return {
        "created": c["created"],
        "reorder_data": r["data"],
        "reorder_weights": r["weights"],
        "reorder_to_plain": r["to_plain"],
    }


def phalanx_trainer(name: str, model=None, batch: int | None = None):
    """A closure running one training iteration; returns phase seconds and counter deltas."""
    import phalanx
    import phalanx.nn.functional as F

    model = model if model is not None else build_phalanx(name)
    model.train()
    opt = phalanx.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xa, ya = batch_arrays(name, batch)
    x, y = phalanx.from_numpy(xa), phalanx.from_numpy(ya)

    def step() -> Phases:
        before = _counters()
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        t3 = time.perf_counter()
        after = _counters()
        out = {"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2, "total": t3 - t0}
        out.update({k: float(after[k] - before[k]) for k in COUNTERS})
        return out

    return step


# --- torch -------------------------------------------------------------------------------


def build_torch(name: str, init_state: dict[str, np.ndarray] | None = None):
    """The torch twin; with `init_state` (phalanx's state_dict as numpy) its weights and
    buffers are copied from there."""
    import torch

    import torch_models as tm

    classes = MODELS[name]["classes"]
    model = {
        "lenet": lambda: tm.LeNet5(classes),
        "resnet18": lambda: tm.resnet18(classes, stem="cifar"),
        "mobilenet_v1": lambda: tm.mobilenet_v1(classes, 1.0),
        "resnet50": lambda: tm.resnet50(classes),
    }[name]()
    if init_state is not None:
        dst = model.state_dict()
        if set(init_state) != set(dst):
            raise RuntimeError(f"{name}: state_dict keys differ: {set(init_state) ^ set(dst)}")
        with torch.no_grad():
            for k, v in init_state.items():
                dst[k].copy_(torch.from_numpy(np.array(v)).reshape(dst[k].shape))
    return model


def torch_trainer(name: str, model=None, batch: int | None = None):
    import torch
    import torch.nn.functional as F

    model = model if model is not None else build_torch(name)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xa, ya = batch_arrays(name, batch)
    x, y = torch.from_numpy(xa), torch.from_numpy(ya)

    def step() -> Phases:
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        t3 = time.perf_counter()
        return {"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2, "total": t3 - t0}

    return step


# --- FLOPs -------------------------------------------------------------------------------


def train_flops(name: str, batch: int) -> float:
    """Conv + linear FLOPs of one training iteration: forward 2*MACs from the layer shapes
    (output size x input channels per group x kernel area), training ~= 3x forward."""
    import torch

    spec = MODELS[name]
    torch.set_num_threads(1)  # the parent process stays out of the workers' way
    model = build_torch(name)
    macs = []

    def conv_hook(m, _inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        macs.append(out.numel() * (m.in_channels // m.groups) * k)

    def linear_hook(m, _inp, out):
        macs.append(out.numel() * m.in_features)

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, torch.nn.Linear):
            m.register_forward_hook(linear_hook)
    with torch.no_grad():
        model(torch.zeros(1, *spec["shape"]))
    return 3 * 2 * sum(macs) * batch


# --- the side-by-side run ----------------------------------------------------------------


def worker_command(framework: str, cmd: dict, state: dict) -> dict:
    """Runs inside a worker process (see _common.Worker): builds a model, runs a step."""
    if cmd["cmd"] == "model":
        name, batch = cmd["name"], cmd.get("batch")
        if framework == "phalanx":
            model = build_phalanx(name)
            np.savez(
                cmd["init_path"], **{k: np.array(v.numpy()) for k, v in model.state_dict().items()}
            )
            state["step"] = phalanx_trainer(name, model, batch)
        else:
            with np.load(cmd["init_path"]) as init:
                model = build_torch(name, dict(init))
            state["step"] = torch_trainer(name, model, batch)
        return {}
    if cmd["cmd"] == "step":
        return state["step"]()
    raise ValueError(f"unknown worker command {cmd}")


def bench_model(
    name: str, threads: list[int], iters: int, warmup: int, batch: int | None = None
) -> list[dict]:
    """Throughput rows for one model at each thread count, phalanx and torch alternated, each
    in its own worker process, starting from the same weights."""
    import tempfile

    batch = batch or MODELS[name]["batch"]
    flops = train_flops(name, batch) if MODELS[name]["conv"] else None
    rows = []
    for n in threads:
        args = ["--threads", str(n)]
        with (
            tempfile.TemporaryDirectory() as tmp,
            Worker(["--framework", "phalanx", *args]) as pw,
            Worker(["--framework", "torch", *args]) as tw,
        ):
            init = os.path.join(tmp, "init.npz")
            model_cmd = {"cmd": "model", "name": name, "init_path": init, "batch": batch}
            pw.call(model_cmd)
            tw.call(model_cmd)
            # the first phalanx iteration (in the warm-up) creates primitives and momentum
            first: list[Phases] = []

            def p_step(first=first, pw=pw):
                s = pw.call({"cmd": "step"})
                if not first:
                    first.append(s)
                return s

            samples = alternate(
                {"phalanx": p_step, "torch": lambda tw=tw: tw.call({"cmd": "step"})},
                iters,
                max(warmup, 1),
            )
        p, t = phase_medians(samples["phalanx"]), phase_medians(samples["torch"])
        row = {
            "model": name,
            "threads": n,
            "batch": batch,
            "iters": iters,
            "warmup": warmup,
            "phalanx": {k: p[k] for k in (*PHASES, "total")},
            "torch": {k: t[k] for k in (*PHASES, "total")},
            "phalanx_img_s": batch / p["total"],
            "torch_img_s": batch / t["total"],
            # median of the per-round ratios: each round's pair shares the machine's mood
            "ratio": median(
                [
                    ratio(ts["total"], ps["total"])
                    for ps, ts in zip(samples["phalanx"], samples["torch"], strict=True)
                ]
            ),
            "steady": {
                "created_first_iter": first[0]["created"],
                "created_after_first": sum(s["created"] for s in samples["phalanx"]),
                **{
                    f"{k}_per_iter": median([s[k] for s in samples["phalanx"]])
                    for k in COUNTERS[1:]
                },
            },
        }
        if flops is not None:
            row["train_gflop"] = flops / 1e9
            row["phalanx_gflops"] = flops / 1e9 / p["total"]
            row["torch_gflops"] = flops / 1e9 / t["total"]
        rows.append(row)
    return rows


# --- fresh-process probes ----------------------------------------------------------------


def memory_child(framework: str, name: str | None, threads: int, iters: int) -> dict:
    """Runs in a fresh interpreter: peak RSS after `iters` training iterations (or, with
    name None, after importing the framework only: the baseline)."""
    if framework == "phalanx":
        import phalanx

        phalanx.set_num_threads(threads)
        if name is not None:
            step = phalanx_trainer(name)
    else:
        import torch

        torch.set_num_threads(threads)
        if name is not None:
            step = torch_trainer(name)
    if name is not None:
        for _ in range(iters):
            step()
    res = {"peak_bytes": vm_hwm_bytes()}
    if framework == "phalanx":  # what tensors held at most; the rest of the RSS is the allocator's
        res["tensor_peak_bytes"] = phalanx.memory_stats()["peak_allocated_bytes"]
    return res


def bench_memory(name: str, threads: int, iters: int = 2) -> dict:
    out = {}
    for fw in ("phalanx", "torch"):
        args = ["--child", "memory", "--framework", fw, "--threads", str(threads)]
        base = child_result(run_child(args))["peak_bytes"]
        peak = child_result(run_child([*args, "--models", name, "--iters", str(iters)]))
        out[fw] = {"baseline_bytes": base, **peak}
        out[fw]["net_mib"] = (peak["peak_bytes"] - base) / 2**20
    out["ratio"] = ratio(out["phalanx"]["net_mib"], out["torch"]["net_mib"])
    out["threads"] = threads
    return out


MARK_BEGIN, MARK_END = "BENCH_MARK_BEGIN", "BENCH_MARK_END"


def overhead_child(name: str, threads: int, batch: int | None = None, warmup: int = 2) -> dict:
    """Runs in a fresh interpreter under ONEDNN_VERBOSE: one marked iteration after warm-up.
    oneDNN prints through C stdio, so both buffers are flushed around the markers."""
    import ctypes
    import sys

    import phalanx

    libc = ctypes.CDLL(None)
    phalanx.set_num_threads(threads)
    step = phalanx_trainer(name, batch=batch)
    for _ in range(warmup):
        step()

    def mark(text: str) -> None:
        sys.stdout.flush()
        libc.fflush(None)
        os.write(1, (text + "\n").encode())

    mark(MARK_BEGIN)
    s = step()
    mark(f"{MARK_END} {s['total'] * 1e3:.3f}")
    return {"wall_ms": s["total"] * 1e3}


def bench_overhead(name: str, threads: int, batch: int | None = None) -> dict:
    """Share of one phalanx iteration spent outside oneDNN kernels: wall time minus the sum of
    the primitive execution times oneDNN's verbose mode reports."""
    env = {"ONEDNN_VERBOSE": "1", "DNNL_VERBOSE": "1"}
    batch = batch or MODELS[name]["batch"]
    args = ["--child", "overhead", "--models", name, "--threads", str(threads)]
    args += ["--batch", str(batch)]
    stdout = run_child(args, env=env)
    inside, kernel_ms, execs, wall_ms = False, 0.0, 0, float("nan")
    by_kind: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith(MARK_BEGIN):
            inside = True
        elif line.startswith(MARK_END):
            inside = False
            wall_ms = float(line.split()[1])
        elif inside and ",exec," in line and "_verbose" in line:
            fields = line.split(",")
            try:
                ms = float(fields[-1])
            except ValueError:
                continue
            kernel_ms += ms
            execs += 1
            # oneDNN 2.x: verbose,exec,cpu,<primitive>,<impl>,<prop>,...; 3.x adds a field
            kind = fields[3] if fields[2] == "cpu" else fields[4]
            by_kind[kind] = by_kind.get(kind, 0.0) + ms
    return {
        "threads": threads,
        "batch": batch,
        "wall_ms": wall_ms,
        "kernel_ms": kernel_ms,
        "primitive_execs": execs,
        "outside_share": 1 - kernel_ms / wall_ms if wall_ms == wall_ms and wall_ms > 0 else None,
        "kernel_ms_by_primitive": by_kind,
    }
