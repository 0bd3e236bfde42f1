"""One rank of `make bench-scale` (benchmarks/scale_bench.py starts N of them via the launcher).

A small MLP on Fashion-MNIST-shaped random data, trained with DDP for --steps steps. The rank
writes what it measured to OUT/rank<N>.json: rendezvous time (init_process_group and the DDP
constructor's parameter broadcast), each step's time, its memory, and a checksum of its
parameters after the last step (the driver checks all ranks agree).
"""

from __future__ import annotations

import argparse
import json
import os
import time

T_START = time.time()  # before importing phalanx: the import is part of a rank's start-up

import numpy as np  # noqa: E402

import phalanx  # noqa: E402
import phalanx.distributed as dist  # noqa: E402
import phalanx.nn as nn  # noqa: E402
import phalanx.nn.functional as F  # noqa: E402
from phalanx.nn.parallel import DistributedDataParallel  # noqa: E402


def loopback_address(rank: int) -> str:
    """127.0.0.0/8 is all loopback on Linux: rank r gets 127.10.<hi>.<lo>, its own address."""
    return f"127.10.{(rank + 1) // 250}.{(rank + 1) % 250 + 1}"


def status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32, help="samples per rank per step")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--own-address", action="store_true", help="one loopback address per rank")
    args = ap.parse_args()

    rank = int(os.environ["RANK"])
    if args.own_address:
        os.environ["PHALANX_ADDR"] = loopback_address(rank)
    phalanx.set_num_threads(1)
    t_imported = time.time()
    dist.init_process_group("gloo")
    t_group = time.time()
    phalanx.manual_seed(rank)  # different initial weights: DDP must make them rank 0's
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(784, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10)
    )
    model = DistributedDataParallel(net)
    t_ddp = time.time()
    opt = phalanx.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

    rng = np.random.default_rng(rank)
    x = phalanx.from_numpy(rng.standard_normal((args.batch, 1, 28, 28), dtype=np.float32))
    y = phalanx.from_numpy(rng.integers(0, 10, size=args.batch).astype(np.int64))
    steps = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        steps.append(time.perf_counter() - t0)
    t_done = time.time()
    checksum = float(sum(float(p.detach().double().sum().item()) for p in net.parameters()))
    result = {
        "rank": rank,
        "start": T_START,
        "imported": t_imported,
        "group": t_group,
        "ddp": t_ddp,
        "done": t_done,
        "steps": steps,
        "loss": float(loss.item()),
        "checksum": checksum,
        "rss_kb": status_kb("VmRSS"),
        "hwm_kb": status_kb("VmHWM"),
        "threads": status_kb("Threads"),
        "fds": len(os.listdir("/proc/self/fd")),
        "address": os.environ.get("PHALANX_ADDR", ""),
    }
    path = os.path.join(args.out, f"rank{rank}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
