"""Distributed phalanx vs torch.distributed (gloo) on this machine, 2 ranks, same run.

    make bench-dist                                   # everything below, ~4 minutes
    python benchmarks/dist_bench.py --links loopback --models cnn --rounds 5
    python benchmarks/dist_bench.py --links 100mbit --models "" --sizes 4,1K,1M   # no DDP
    python benchmarks/dist_bench.py --mobilenet-res 224 --mobilenet-batch 16 --iters 3

For each link setting -- loopback (unlimited), and as root two ranks in their own network
namespaces behind veth links shaped to 1 Gbit/s and 100 Mbit/s (tests/python/netns.py) -- it
measures:
- all-reduce of float32 tensors, 4 bytes to 64 MB: time per operation (latency for the small
  sizes) and algorithm bandwidth (bytes / time);
- 2-rank data-parallel training of a small CNN and MobileNet-v1: compute-only iteration time
  (1 rank, no DDP), communication-only time (the gradient's all-reduce in 25 MB buckets, as
  DDP sends it) and the DDP iteration time, so "DDP ~ max(compute, communication)" can be
  read off.
Each framework's ranks are their own processes (a "world" of 2, started once per link and
driven one command at a time); phalanx and torch alternate round by round (order flipped
every round) so a slow spell hits both; numbers are medians over rounds. Ranks use 1 thread
each (2 ranks on 2 cores). Tables go to stdout, every number to --json. The machine is
shared: run it when nothing else does (no compiles), or read only the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests", "python")
for _p in (HERE, TESTS):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _spawn import World, serve  # noqa: E402

from _common import median, ratio, table  # noqa: E402

FRAMEWORKS = ("phalanx", "torch")
LINKS = {"loopback": None, "1gbit": 1000.0, "100mbit": 100.0}  # name -> netns rate (Mbit/s)
BUCKET_MB = 25
LR, MOMENTUM = 0.01, 0.9


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--links", default=",".join(LINKS), help=f"comma list from {', '.join(LINKS)}")
    ap.add_argument("--sizes", default="4,256,4K,64K,1M,16M,64M", help="all-reduce sizes, bytes")
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds per measurement")
    ap.add_argument("--models", default="cnn,mobilenet_v1", help="DDP models: cnn, mobilenet_v1")
    ap.add_argument("--iters", type=int, default=1, help="training iterations per round")
    ap.add_argument("--cnn-batch", type=int, default=32, help="per-rank batch, 3x32x32 images")
    ap.add_argument("--mobilenet-batch", type=int, default=8, help="per-rank batch")
    ap.add_argument("--mobilenet-res", type=int, default=128, help="input resolution (224: paper)")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help=argparse.SUPPRESS)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "dist_latest.json"))
    args = ap.parse_args(argv)
    args.links = [x for x in args.links.split(",") if x]
    for link in args.links:
        if link not in LINKS:
            ap.error(f"unknown link {link!r}; choose from {', '.join(LINKS)}")
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    if any(s < 4 for s in args.sizes):
        ap.error("--sizes: every size must be at least 4 bytes (one float32)")
    args.models = [m for m in args.models.split(",") if m]
    for m in args.models:
        if m not in ("cnn", "mobilenet_v1"):
            ap.error(f"unknown model {m!r}; choose from cnn, mobilenet_v1")
    args.frameworks = args.frameworks.split(",")
    return args


# =========================================================================== rank side


class _Rank:
    """The framework this rank runs (DIST_BENCH_FRAMEWORK), behind one small interface."""

    def __init__(self) -> None:
        self.name = os.environ["DIST_BENCH_FRAMEWORK"]
        if self.name == "phalanx":
            import phalanx
            import phalanx.distributed as dist

            phalanx.set_num_threads(1)
            self.fw = phalanx
        else:
            import torch
            import torch.distributed as dist

            torch.set_num_threads(1)
            self.fw = torch
        self.dist = dist
        self.cache: dict = {}
        dist.init_process_group("gloo", timeout=_timeout(dist))

    def tensor(self, a: np.ndarray):
        return self.fw.from_numpy(a)


def _timeout(dist):
    import datetime

    return datetime.timedelta(seconds=float(os.environ.get("DIST_BENCH_TIMEOUT", "120")))


_rank: _Rank | None = None


def reps_for(nbytes: int) -> int:
    """Operations per timing: enough to see small ones, one for the large ones. Every rank
    computes the same number (no negotiation)."""
    return max(1, min(20, (8 << 20) // nbytes))


def case_all_reduce(rank, world, sizes):
    """Seconds per all-reduce of each size (float32 SUM), back to back after a barrier."""
    dist, out = _rank.dist, []
    for nbytes in sizes:
        t = _rank.tensor(np.ones(nbytes // 4, np.float32))
        dist.all_reduce(t)  # first use of this size: allocation, connection warm-up
        reps = reps_for(nbytes)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(t)
        out.append((time.perf_counter() - t0) / reps)
    return out


def _small_cnn(nn):
    """Two conv blocks and a 1M-parameter classifier: ~4.4 MB of gradient, little compute."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def _build(model: str):
    fw = _rank.fw
    fw.manual_seed(0)
    if model == "cnn":
        return _small_cnn(fw.nn)
    import models  # benchmarks/models.py: phalanx.models and their torch twins

    if _rank.name == "phalanx":
        return models.build_phalanx("mobilenet_v1")
    return models.build_torch("mobilenet_v1")


def _batch(model: str, batch: int, res: int):
    shape = (3, 32, 32) if model == "cnn" else (3, res, res)
    classes = 10 if model == "cnn" else 1000
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    y = rng.integers(0, classes, batch).astype(np.int64)
    return _rank.tensor(x), _rank.tensor(y)


def _ddp(module):
    if _rank.name == "phalanx":
        from phalanx.nn.parallel import DistributedDataParallel
    else:
        from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(module, bucket_cap_mb=BUCKET_MB)


def case_train(rank, world, mode, model, batch, res, iters):
    """Seconds per training iteration (forward + cross_entropy, backward, SGD step), median
    of `iters` after one warm-up on first use. mode "compute": rank 0 alone, no DDP (the
    other ranks return None); mode "ddp": every rank, the module wrapped in DDP."""
    if mode == "compute" and rank != 0:
        return None
    key = (mode, model, batch, res)
    if key not in _rank.cache:
        module = _build(model)
        net = _ddp(module) if mode == "ddp" else module
        opt = _rank.fw.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
        _rank.cache[key] = (net, opt, _batch(model, batch, res))
        _step(*_rank.cache[key])
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        _step(*_rank.cache[key])
        times.append(time.perf_counter() - t0)
    return median(times)


def _step(net, opt, data) -> None:
    x, y = data
    loss = _rank.fw.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()


def case_grad_comm(rank, world, model, batch, res, iters):
    """Seconds to all-reduce the model's gradient as DDP would: float32 buckets of at most
    BUCKET_MB, posted asynchronously, then waited for (no compute, no copies)."""
    key = ("comm", model)
    if key not in _rank.cache:
        n = sum(int(np.prod(p.shape)) for p in _build(model).parameters())
        cap = BUCKET_MB * (1 << 20) // 4
        sizes = [min(cap, n - i) for i in range(0, n, cap)]
        _rank.cache[key] = [_rank.tensor(np.ones(s, np.float32)) for s in sizes]
    buckets, dist = _rank.cache[key], _rank.dist
    times = []
    for _ in range(iters + 1):
        dist.barrier()
        t0 = time.perf_counter()
        for w in [dist.all_reduce(b, async_op=True) for b in buckets]:
            w.wait()
        times.append(time.perf_counter() - t0)
    return median(times[1:])


def case_params(rank, world, model):
    return sum(int(np.prod(p.shape)) for p in _build(model).parameters())


CASES = {k[5:]: v for k, v in list(globals().items()) if k.startswith("case_")}


def _init() -> None:
    global _rank
    _rank = _Rank()


def _fini() -> None:
    _rank.dist.destroy_process_group()


def _serve() -> None:
    serve(CASES, _init, _fini)


# =========================================================================== driver side


@contextlib.contextmanager
def link_worlds(link: str, frameworks: list[str]):
    """One 2-rank world per framework on `link`; yields {framework: World}."""
    rate = LINKS[link]
    with contextlib.ExitStack() as stack:
        if link == "loopback":
            prefixes, master, addrs, iface = None, "127.0.0.1", ["127.0.0.1"] * 2, "lo"
        else:
            from netns import NetNamespaces

            net = stack.enter_context(NetNamespaces(2, rate_mbit=rate))
            prefixes = [net.exec_prefix(r) for r in range(2)]
            master, addrs, iface = net.addrs[0], net.addrs, net.iface
        worlds = {}
        for fw in frameworks:
            env = {"DIST_BENCH_FRAMEWORK": fw, "GLOO_SOCKET_IFNAME": iface}
            worlds[fw] = stack.enter_context(
                World(
                    "dist_bench",
                    2,
                    path=HERE,
                    env=env,
                    rank_env=[{"PHALANX_ADDR": a} for a in addrs],
                    prefixes=prefixes,
                    master_addr=master,
                    start_timeout=120,
                )
            )
        yield worlds


def alternated(worlds: dict, rounds: int, case: str, *args, timeout: float = 600):
    """{framework: [rank 0's value per round]}, frameworks alternating, order flipped."""
    names = list(worlds)
    out = {n: [] for n in names}
    for i in range(rounds):
        for n in names if i % 2 == 0 else reversed(names):
            out[n].append(worlds[n].run(case, *args, timeout=timeout)[0])
    return out


def bench_link(link: str, args) -> dict:
    res: dict = {"link": link, "all_reduce": [], "ddp": []}
    with link_worlds(link, args.frameworks) as worlds:
        samples = alternated(worlds, args.rounds, "all_reduce", args.sizes)
        for i, nbytes in enumerate(args.sizes):
            row = {"bytes": nbytes, "reps": reps_for(nbytes)}
            for fw in worlds:
                row[fw] = median([s[i] for s in samples[fw]])
            res["all_reduce"].append(row)
        for model in args.models:
            batch = args.cnn_batch if model == "cnn" else args.mobilenet_batch
            res_px = 32 if model == "cnn" else args.mobilenet_res
            shape = (batch, res_px, args.iters)
            row = {"model": model, "batch": batch, "res": res_px}
            first = next(iter(worlds.values()))
            row["params"] = first.run("params", model)[0]
            for mode in ("compute", "ddp"):
                got = alternated(worlds, args.rounds, "train", mode, model, *shape)
                for fw in worlds:
                    row.setdefault(fw, {})[mode] = median(got[fw])
            got = alternated(worlds, args.rounds, "grad_comm", model, *shape)
            for fw in worlds:
                row[fw]["comm"] = median(got[fw])
            res["ddp"].append(row)
    return res


def human_bytes(n: int) -> str:
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


def report(res: dict) -> str:
    fws = res["frameworks"]
    out = [
        "### Distributed: phalanx vs torch.distributed (gloo), 2 ranks, 1 thread each",
        "",
        f"- Command: `{res['command']}` ({res['date']}, {res['elapsed_s']:.0f} s)",
        f"- Medians over {res['args']['rounds']} rounds, frameworks alternated. Speed-up = "
        "torch time / phalanx time (> 1: phalanx faster). Bandwidth = bytes / time.",
    ]
    out += [f"- Not run: {n}" for n in res["skipped"]]
    for lk in res["links"]:
        out += ["", f"#### All-reduce (float32 SUM), link: {lk['link']}", ""]
        headers = ["size"] + [f"{fw} us" for fw in fws] + [f"{fw} MB/s" for fw in fws]
        rows = []
        for r in lk["all_reduce"]:
            us = [r[fw] * 1e6 for fw in fws]
            bw = [r["bytes"] / r[fw] / 1e6 for fw in fws]
            speedup = [f"{ratio(r['torch'], r['phalanx']):.2f}x"] if len(fws) == 2 else []
            rows.append([human_bytes(r["bytes"])] + us + bw + speedup)
        out.append(table(headers + (["speed-up"] if len(fws) == 2 else []), rows))
    ddp_rows = []
    for lk in res["links"]:
        for r in lk["ddp"]:
            for fw in fws:
                t = r[fw]
                bound = max(t["compute"], t["comm"])
                speedup = ratio(r["torch"]["ddp"], r["phalanx"]["ddp"]) if len(fws) == 2 else 0
                ddp_rows.append(
                    [
                        f"{r['model']} b{r['batch']} {r['res']}px ({r['params'] / 1e6:.1f}M)",
                        lk["link"],
                        fw,
                        t["compute"] * 1e3,
                        t["comm"] * 1e3,
                        bound * 1e3,
                        t["ddp"] * 1e3,
                        f"{ratio(t['ddp'], bound):.2f}",
                        f"{speedup:.2f}x" if fw == "phalanx" and speedup else "",
                    ]
                )
    if ddp_rows:
        out += [
            "",
            "#### DDP iteration (per-rank batch; compute = 1 rank without DDP; comm = gradient "
            f"all-reduce in {BUCKET_MB} MB buckets alone)",
            "",
            table(
                [
                    "model",
                    "link",
                    "framework",
                    "compute ms",
                    "comm ms",
                    "max ms",
                    "DDP iter ms",
                    "DDP / max",
                    "speed-up",
                ],
                ddp_rows,
            ),
        ]
    return "\n".join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    res = {
        "command": " ".join(["python", "benchmarks/dist_bench.py", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "frameworks": args.frameworks,
        "links": [],
        "skipped": [],
    }
    from netns import skip_reason

    for link in args.links:
        if link != "loopback" and skip_reason():
            res["skipped"].append(f"{link}: {skip_reason()}")
            continue
        print(f"[dist_bench] link {link} ...", file=sys.stderr, flush=True)
        res["links"].append(bench_link(link, args))
    res["elapsed_s"] = time.time() - start
    print(report(res))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
