"""One rank of benchmarks/perfmodel_validate.py, on an emulated phone (or locally).

Measures, in this order, with every rank doing the same: the all-reduce time of float32
tensors of several sizes (the link's alpha and beta are fitted from these); this rank's
compute (forward, backward, optimizer step of an MLP, no DDP); then DDP training steps of the
same model. Writes OUT/rank<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.nn.parallel import DistributedDataParallel


def timed_allreduce(nbytes: int, reps: int) -> float:
    t = phalanx.zeros(max(1, nbytes // 4))
    dist.all_reduce(t)  # warm-up: connections, buffers
    times = []
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="4,262144,1048576,4194304", help="all-reduce bytes")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()

    phalanx.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    allreduce = {int(s): timed_allreduce(int(s), args.reps) for s in args.sizes.split(",")}

    def mlp():
        phalanx.manual_seed(0)
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, args.hidden),
            nn.ReLU(),
            nn.Linear(args.hidden, args.hidden),
            nn.ReLU(),
            nn.Linear(args.hidden, 10),
        )

    # Two copies: `alone` measures this rank's compute without DDP, `net` trains under DDP.
    # Their steps alternate, so both see the same load on a shared machine.
    alone, net = mlp(), mlp()
    param_bytes = sum(p.numel() * 4 for p in net.parameters())
    opt_alone = phalanx.optim.SGD(alone.parameters(), lr=0.01, momentum=0.9)
    opt = phalanx.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    x = phalanx.from_numpy(rng.standard_normal((args.batch, 1, 28, 28), dtype=np.float32))
    y = phalanx.from_numpy(rng.integers(0, 10, size=args.batch).astype(np.int64))

    def one_step(model, optimizer, phases):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        phases.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))

    model = DistributedDataParallel(net)
    local, ddp = [], []
    one_step(alone, opt_alone, [])  # warm-up (primitive caches)
    one_step(model, opt, [])
    dist.barrier()
    for _ in range(args.steps):
        one_step(alone, opt_alone, local)
        one_step(model, opt, ddp)

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    result = {
        "rank": rank,
        "world": world,
        "allreduce": {str(k): v for k, v in allreduce.items()},
        "param_bytes": param_bytes,
        "batch": args.batch,
        "forward_s": med(local, 0),
        "backward_s": med(local, 1),
        "optimizer_s": med(local, 2),
        "compute_s": med(local, 3),
        "ddp_step_s": med(ddp, 3),
    }
    path = os.path.join(args.out, f"rank{rank}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
