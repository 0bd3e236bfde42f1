"""A driver script for the phalanx.distributed.run tests. Everything the ranks run is defined
here, in __main__, so it can only reach them by value (as from a notebook).

    run_driver.py MODE [options]    (prints one JSON line "RESULT {...}" at the end)

values  return values: a class, a closure, keyword arguments, tensors, an argument larger
        than one store value; each rank prints a line (--output picks whose is shown)
raise   rank --fail-rank raises TrainingDiverged (defined here) while the others wait in a
        barrier
crash   rank 1 writes a line to stderr and exits 3 without reporting anything
sleep   every rank writes "<pid> <grandchild pid>" to PID_DIR/rank<N>.pid and sleeps; the
        test interrupts the driver or lets --timeout run out
Hosts: --hosts FILE --ssh CMD --python CMD start the ranks over (fake) ssh.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import phalanx
import phalanx.distributed as dist


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class TrainingDiverged(Exception):
    pass


def make_values_fn(scale):
    def fn(p, big, *, extra):
        rank = dist.get_rank()
        t = phalanx.from_numpy(np.array([rank + 1.0], np.float32))
        dist.all_reduce(t)
        print(f"hello from rank {rank}", flush=True)
        print(f"stderr of rank {rank}", file=sys.stderr, flush=True)
        weight = phalanx.nn.Parameter(phalanx.ones(2) * rank)
        return Point(p.x * scale + rank, t.item() + extra), weight, float(big.sum()), os.getpid()

    return fn


def raising_fn(fail_rank):
    if dist.get_rank() == fail_rank:
        raise TrainingDiverged(f"loss is nan at step 7 on rank {fail_rank}")
    dist.barrier()  # blocks until the driver stops this rank


def crashing_fn():
    if dist.get_rank() == 1:
        print("rank 1 is about to crash", file=sys.stderr, flush=True)
        os._exit(3)
    time.sleep(1000)


def sleeping_fn(pid_dir):
    grandchild = subprocess.Popen(["sleep", "1000"])
    path = os.path.join(pid_dir, f"rank{dist.get_rank()}.pid")
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {grandchild.pid}")
    os.rename(path + ".tmp", path)
    time.sleep(1000)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["values", "raise", "crash", "sleep"])
    p.add_argument("--nproc", type=int)
    p.add_argument("--hosts")
    p.add_argument("--ssh")
    p.add_argument("--python", default="python3")
    p.add_argument("--output", default="rank0")
    p.add_argument("--fail-rank", type=int, default=1)
    p.add_argument("--pid-dir")
    p.add_argument("--timeout", type=float)
    a = p.parse_args()
    where = {"nproc": a.nproc} if a.hosts is None else {"hosts": a.hosts, "ssh": a.ssh}
    options = dict(where, python=a.python, output=a.output, timeout=a.timeout, kill_timeout=2)
    result = {}
    started = time.monotonic()
    try:
        if a.mode == "values":
            big = np.ones(5 << 20, np.float32)  # 20 MiB: more than one store value
            out = dist.run(make_values_fn(10), (Point(1, 2), big), {"extra": 0.5}, **options)
            result["values"] = [
                {
                    "is_point": isinstance(pt, Point),
                    "x": pt.x,
                    "y": pt.y,
                    "weight_type": type(w).__name__,
                    "weight": w.tolist(),
                    "requires_grad": w.requires_grad,
                    "big": big_sum,
                    "pid": pid,
                }
                for pt, w, big_sum, pid in out
            ]
        elif a.mode == "raise":
            dist.run(raising_fn, (a.fail_rank,), **options)
        elif a.mode == "crash":
            dist.run(crashing_fn, **options)
        else:
            dist.run(sleeping_fn, (a.pid_dir,), **options)
    except dist.RankError as e:
        result["error"] = {
            "class": "RankError",
            "rank": e.rank,
            "host": e.host,
            "type_name": e.type_name,
            "cause_is_local_class": isinstance(e.__cause__, TrainingDiverged),
            "exception_is_cause": e.exception is e.__cause__,
            "remote_traceback": e.remote_traceback,
            "message": str(e),
        }
    except (KeyboardInterrupt, TimeoutError) as e:
        result["error"] = {"class": type(e).__name__, "message": str(e)}
    result["elapsed"] = time.monotonic() - started
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
