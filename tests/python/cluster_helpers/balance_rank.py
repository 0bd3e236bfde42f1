"""A rank of a data-parallel job on emulated phones, for the adaptation tests and the
benchmark: a small CNN on CIFAR-shaped synthetic data, one BalancedDistributedSampler
global batch per step, and one of four ways to split and weight it:

    balance    DistributedDataParallel(balance=sampler): shares follow measured speeds
    equal      equal shares, weighted by share (the global batch's gradient)
    run_time   equal shares, gradients weighted by relative run time (wimpy-nodes paper)
    torch      torch.nn.parallel.DistributedDataParallel, equal batches (needs
               --torch-master ADDR:PORT, rank 0's phone address and a free port)

    balance_rank.py --mode balance --steps 40 --global-batch 48

Rank 0 prints one line per step, `STEP {json}`: step, wall seconds of the step, shares and
(phalanx modes) the balancer's speeds. All ranks print `DONE` at the end.
"""

import argparse
import json
import os
import time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--mode", choices=("balance", "equal", "run_time", "torch"), default="balance")
p.add_argument("--steps", type=int, default=40)
p.add_argument("--global-batch", type=int, default=48)
p.add_argument("--interval", type=int, default=5)
p.add_argument("--width", type=int, default=16, help="channels of the convolutions")
p.add_argument("--torch-master", default=None)
args = p.parse_args()

N = args.global_batch * args.steps
rng = np.random.default_rng(0)
X = rng.standard_normal((N, 3, 32, 32)).astype(np.float32)
Y = rng.integers(0, 10, size=N).astype(np.int64)


def equal_split(total, parts):
    base, extra = divmod(total, parts)
    return [base + 1 if r < extra else base for r in range(parts)]


def report(step, seconds, shares, speeds=None, noises=None):
    line = {"step": step, "time": round(seconds, 5), "shares": shares}
    if speeds is not None:
        line["speeds"] = [None if s is None else round(s, 2) for s in speeds]
    if noises is not None:
        line["noises"] = [round(n, 3) for n in noises]
    print("STEP " + json.dumps(line), flush=True)


def run_phalanx():
    import phalanx
    import phalanx.distributed as dist
    import phalanx.nn as nn
    import phalanx.nn.functional as F
    from phalanx.nn.parallel import DistributedDataParallel as DDP
    from phalanx.utils.data import BalancedDistributedSampler, DataLoader, TensorDataset

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    w = args.width
    phalanx.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * w * 8 * 8, 10),
    )
    data = TensorDataset(phalanx.tensor(X), phalanx.tensor(Y))
    sampler = BalancedDistributedSampler(data, args.global_batch, seed=1)
    loader = DataLoader(data, batch_sampler=sampler)
    if args.mode == "balance":
        ddp = DDP(model, balance=sampler, balance_interval=args.interval)
    else:
        ddp = DDP(model, batch_weighting="local_batch" if args.mode == "equal" else "run_time")
    opt = phalanx.optim.SGD(ddp.parameters(), lr=0.01)
    last = time.perf_counter()
    for step, (xb, yb) in enumerate(loader):
        shares = list(sampler.shares_at(step))
        opt.zero_grad()
        F.cross_entropy(ddp(xb), yb).backward()
        opt.step()
        now = time.perf_counter()
        if rank == 0:
            speeds = ddp.balancer.speeds if ddp.balancer is not None else None
            noises = ddp.balancer.noises if ddp.balancer is not None else None
            report(step, now - last, shares, speeds, noises)
        last = now
    print("DONE", flush=True)
    dist.destroy_process_group()


def run_torch():
    import torch
    import torch.distributed as tdist
    import torch.nn as tnn
    import torch.nn.functional as TF

    torch.set_num_threads(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    tdist.init_process_group(
        "gloo", init_method=f"tcp://{args.torch_master}", rank=rank, world_size=world
    )
    w = args.width
    torch.manual_seed(0)
    model = tnn.Sequential(
        tnn.Conv2d(3, w, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(w, 2 * w, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(2 * w * 8 * 8, 10),
    )
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    shares = equal_split(args.global_batch, world)
    lo = sum(shares[:rank])
    last = time.perf_counter()
    for step in range(args.steps):
        base = step * args.global_batch + lo
        xb = torch.from_numpy(X[base : base + shares[rank]])
        yb = torch.from_numpy(Y[base : base + shares[rank]])
        opt.zero_grad()
        TF.cross_entropy(ddp(xb), yb).backward()
        opt.step()
        now = time.perf_counter()
        if rank == 0:
            report(step, now - last, shares)
        last = now
    print("DONE", flush=True)
    tdist.destroy_process_group()


if args.mode == "torch":
    run_torch()
else:
    run_phalanx()
