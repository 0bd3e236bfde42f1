"""A stand-in training script for the sweep tests: no model, just a loss that depends on the
swept --lr and --bs, reported with phalanx.report at every step and at the end. Every rank
joins the process group (so a trial really is a distributed job); rank 0 appends its
arguments to $SWEEP_TEST_RUNS, so a test can count which trials ran."""

import argparse
import math
import os
import time

import phalanx
import phalanx.distributed as dist

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--bs", type=int, default=1)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--sleep", type=float, default=0.0, help="seconds after each step's report")
p.add_argument("--fail-above", type=float, default=None, help="raise when lr is above this")
args = p.parse_args()

dist.init_process_group()
rank, world = dist.get_rank(), dist.get_world_size()
if os.environ.get("SWEEP_TEST_PIDS"):
    with open(os.path.join(os.environ["SWEEP_TEST_PIDS"], f"{os.getpid()}.pid"), "w") as f:
        f.write(str(os.getpid()))
if rank == 0 and os.environ.get("SWEEP_TEST_RUNS"):
    with open(os.environ["SWEEP_TEST_RUNS"], "a") as f:
        f.write(f"lr={args.lr:g} bs={args.bs} world={world}\n")
if args.fail_above is not None and args.lr > args.fail_above:
    raise ValueError(f"lr {args.lr:g} diverged")
target = (math.log10(args.lr) + 2) ** 2 + 1.0 / args.bs  # best at lr=0.01, large bs
for step in range(args.steps):
    loss = target + 1.0 / (step + 1)
    phalanx.report(step=step, loss=loss)
    time.sleep(args.sleep)
phalanx.report(loss=target, acc=1.0 / (1.0 + target), world=world)
dist.barrier()  # like a real job, which all-reduces: no rank leaves while a peer connects
dist.destroy_process_group()
