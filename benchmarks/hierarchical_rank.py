"""One rank of benchmarks/hierarchical_bench.py: flat vs hierarchical all-reduce times."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

import phalanx
import phalanx.distributed as dist
from phalanx.distributed.algorithms.hierarchical import Hierarchy


def timed(fn, t, reps: int) -> float:
    fn(t)  # warm-up
    times = []
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="65536,4194304")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    phalanx.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    hier = Hierarchy.from_env()
    rows = []
    for nbytes in (int(s) for s in args.sizes.split(",")):
        t = phalanx.from_numpy(np.ones(nbytes // 4, dtype=np.float32))
        flat = timed(dist.all_reduce, t, args.reps)
        h = timed(hier.all_reduce, t, args.reps)
        rows.append({"bytes": nbytes, "flat_s": flat, "hierarchical_s": h})
    # The sums agree (ones from every rank, reduced many times: compare one fresh reduce).
    a = phalanx.from_numpy(np.full(1000, rank + 1, dtype=np.float32))
    b = phalanx.from_numpy(np.full(1000, rank + 1, dtype=np.float32))
    dist.all_reduce(a)
    hier.all_reduce(b)
    assert np.array_equal(a.numpy(), b.numpy()), "hierarchical sum differs from the flat one"
    with open(os.path.join(args.out, f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world": world, "groups": hier.groups, "rows": rows}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
