"""Rank script for the launcher tests: joins the group, all-reduces its rank and prints the
sum with what the launcher told it. Rank 0 also draws a carriage-return progress line."""

import os
import sys

import numpy as np

import phalanx
import phalanx.distributed as dist

dist.init_process_group()
rank, world = dist.get_rank(), dist.get_world_size()
t = phalanx.from_numpy(np.array([rank], np.float32))
dist.all_reduce(t)
if rank == 0:
    for step in (1, 2):
        sys.stdout.write(f"\rprogress {step}/2")
        sys.stdout.flush()
    sys.stdout.write("\n")
env = os.environ
print(
    f"sum={t.numpy()[0]:g} world={world} local={env['LOCAL_RANK']}/{env['LOCAL_WORLD_SIZE']}"
    f" group={env['GROUP_RANK']}/{env['GROUP_WORLD_SIZE']} addr={env.get('PHALANX_ADDR', '-')}"
)
print(f"args={sys.argv[1:]!r} extra={env.get('LAUNCH_TEST_EXTRA')!r}")
print(f"stderr line of rank {rank}", file=sys.stderr)
dist.destroy_process_group()
