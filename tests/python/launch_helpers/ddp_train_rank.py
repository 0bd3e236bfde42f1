"""A rank of a small DDP training run; one rank can be made to fail mid-training.

    ddp_train_rank.py STEPS [--fail-rank R --fail-step S --how kill|stop|raise] [--pid-dir D]

Prints "rank R step S loss L" per step and "done" at the end. The failing rank sends itself
SIGKILL (vanishes, sockets closed by the kernel), SIGSTOP (frozen: sockets stay open, like an
unplugged or frozen phone) or raises (a Python error).
"""

import argparse
import os
import signal

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.nn.parallel import DistributedDataParallel

p = argparse.ArgumentParser()
p.add_argument("steps", type=int)
p.add_argument("--fail-rank", type=int, default=-1)
p.add_argument("--fail-step", type=int, default=-1)
p.add_argument("--how", choices=("kill", "stop", "raise"), default="kill")
p.add_argument("--pid-dir", default=None)
args = p.parse_args()

dist.init_process_group("gloo")
rank = dist.get_rank()
if args.pid_dir:
    with open(os.path.join(args.pid_dir, f"rank{rank}.pid"), "w") as f:
        f.write(str(os.getpid()))
phalanx.manual_seed(0)
model = DistributedDataParallel(
    nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
)
opt = phalanx.optim.SGD(model.parameters(), lr=0.05)
for step in range(args.steps):
    if rank == args.fail_rank and step == args.fail_step:
        if args.how == "raise":
            raise RuntimeError(f"rank {rank} fails on purpose at step {step}")
        os.kill(os.getpid(), signal.SIGKILL if args.how == "kill" else signal.SIGSTOP)
    x = phalanx.randn(16, 1, 8, 8)
    y = phalanx.randint(0, 10, (16,))
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print(f"rank {rank} step {step} loss {loss.item():.4f}", flush=True)
print("done", flush=True)
dist.destroy_process_group()
