"""Training on ranks of different speeds: shares of the global batch follow measured speed.

    phalanx launch --nproc 2 examples/heterogeneous.py --balance --slow 1:3      # this machine
    phalanx launch --nproc 2 examples/heterogeneous.py --slow 1:3                # equal shares
    phalanx launch --nproc 2 examples/heterogeneous.py --wimpy --slow 1:3        # run-time weights
    phalanx launch --hosts phones.txt examples/heterogeneous.py --balance        # a phone rack

A BalancedDistributedSampler splits each global batch by integer shares; with `--balance`,
DistributedDataParallel measures every rank's compute time per sample and moves samples from
slow ranks to fast ones (every `--interval` steps, with hysteresis), weighting gradients by
share so every update is the global batch's gradient. BatchNorm layers become SyncBatchNorm,
whose statistics are the global batch's however small a rank's part. `--wimpy` is the
wimpy-smartphone-nodes method for comparison: equal batches, gradients weighted by speed.
(`--no-sync-bn` saves SyncBatchNorm's two all-reduces per layer and direction, at the price
of per-rank statistics.)

On one machine every rank is equally fast; `--slow RANK:FACTOR` makes one rank FACTOR times
slower (it sleeps after forward in proportion to its compute), and `--slow-from STEP` makes
it slow only from that step on, as a phone that heats up. Rank 0 prints the shares and each
rank's compute time whenever the shares change (and every `--print-every` steps).

Data: CIFAR-shaped synthetic images by default (`--data synthetic`), or a CIFAR-10 directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.models import mobilenet_v1, resnet18
from phalanx.nn.parallel import DistributedDataParallel
from phalanx.utils.data import (
    CIFAR10,
    BalancedDistributedSampler,
    DataLoader,
    SyntheticImages,
    default_collate,
)
from phalanx.utils.data import transforms as T


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("mobilenet", "resnet18"), default="mobilenet")
    p.add_argument("--width", type=float, default=0.5, help="MobileNet width multiplier")
    p.add_argument("--data", default="synthetic", help="'synthetic' or a CIFAR-10 directory")
    p.add_argument("--global-batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.05)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--balance", action="store_true", help="shares from measured speeds")
    mode.add_argument("--wimpy", action="store_true", help="equal batches, run-time weights")
    p.add_argument("--interval", type=int, default=5, help="steps between re-balancing")
    p.add_argument("--hysteresis", type=float, default=0.1)
    p.add_argument("--max-samples-per-rank", type=int, default=None)
    p.add_argument("--slow", default=None, help="RANK:FACTOR, e.g. 1:3 (emulated slow rank)")
    p.add_argument("--slow-from", type=int, default=0, help="the slow rank slows at this step")
    p.add_argument("--no-sync-bn", action="store_true", help="keep per-rank BatchNorm statistics")
    p.add_argument("--print-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def parse_slow(text: str | None, world: int):
    if text is None:
        return None, 1.0
    try:
        rank, factor = text.split(":")
        rank, factor = int(rank), float(factor)
    except ValueError:
        raise ValueError(f"--slow takes RANK:FACTOR, e.g. 1:3, got {text!r}") from None
    if not 0 <= rank < world or factor < 1.0:
        raise ValueError(f"--slow {text!r}: need 0 <= RANK < {world} and FACTOR >= 1")
    return rank, factor


class SlowDown:
    """Makes this rank `factor` times slower from step `start`: each forward sleeps
    (factor - 1) times the batch's compute cost, measured once at start-up on this model
    alone (so waits for other ranks never inflate it)."""

    def __init__(self, model: nn.Module, factor: float, start: int, batch):
        self.factor, self.start, self.step = factor, start, 0
        self.per_sample = self._calibrate(model, batch)
        model.register_forward_hook(self._after)

    @staticmethod
    def _calibrate(model, x) -> float:
        costs = []
        for _ in range(3):
            t0 = time.perf_counter()
            model(x).sum().backward()
            costs.append((time.perf_counter() - t0) / 8)
        model.zero_grad()
        return sorted(costs)[1]

    def _after(self, module, inputs, output):
        if module.training and self.step >= self.start:
            time.sleep((self.factor - 1.0) * self.per_sample * inputs[0].shape[0])
        self.step += 1


def dataset(args):
    if args.data == "synthetic":
        return SyntheticImages(100 * args.global_batch, (3, 32, 32), 10, seed=args.seed)
    norm = T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    return CIFAR10(args.data, True, T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]))


def build_model(args) -> nn.Module:
    if args.model == "resnet18":
        return resnet18(num_classes=10, stem="cifar")
    return mobilenet_v1(num_classes=10, width_mult=args.width)


def fmt(values, scale=1.0, digits=0):
    return "[" + ", ".join("-" if v is None else f"{v * scale:.{digits}f}" for v in values) + "]"


def main(argv=None) -> int:
    args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    say = print if rank == 0 else (lambda *a, **k: None)
    try:
        slow_rank, factor = parse_slow(args.slow, world)
        data = dataset(args)
        sampler = BalancedDistributedSampler(
            data, args.global_batch, seed=args.seed, num_replicas=world, rank=rank
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    loader = DataLoader(data, batch_sampler=sampler)

    phalanx.manual_seed(args.seed)
    net = build_model(args)
    if rank == slow_rank:
        SlowDown(net, factor, args.slow_from, default_collate([data[i] for i in range(8)])[0])
    model, balancer = net, None
    if distributed:
        if not args.no_sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        model = DistributedDataParallel(
            net,
            balance=sampler if args.balance else None,
            batch_weighting="run_time" if args.wimpy else "local_batch",
            balance_interval=args.interval,
            balance_hysteresis=args.hysteresis,
            max_samples_per_rank=args.max_samples_per_rank,
        )
        balancer = model.balancer
    opt = phalanx.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    mode = "balanced shares" if args.balance else "run-time weights" if args.wimpy else "equal"
    say(
        f"{args.model} on {args.data}: {world} rank(s), global batch {args.global_batch}, "
        f"{mode}; slow rank {slow_rank} x{factor} from step {args.slow_from}"
        if slow_rank is not None
        else f"{args.model} on {args.data}: {world} rank(s), global batch "
        f"{args.global_batch}, {mode}"
    )
    step, shown, times = 0, None, []
    while step < args.steps:
        sampler.set_epoch(step // max(len(sampler), 1))
        for images, labels in loader:
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
            step += 1
            shares = sampler.shares
            if shares != shown or step % args.print_every == 0 or step == args.steps:
                line = f"step {step}: loss {loss.item():.3f}, step {1000 * times[-1]:.0f} ms"
                if balancer is not None:
                    m = balancer.metrics()
                    line += f", compute ms {fmt(m['step_times'], 1000)}"
                    line += f", img/s {fmt(m['speeds'])}"
                    if m["weights"] is not None:
                        line += f", weights {fmt(m['weights'], 1, 2)}"
                if shares != shown:
                    line = f"shares {shares} | " + line
                    shown = shares
                say(line)
            if step >= args.steps:
                break
    recent = sorted(times[-10:])
    median = 1000 * recent[len(recent) // 2]
    say(f"done: {step} steps, median step time of the last 10: {median:.0f} ms")
    ideal = balancer.ideal_step_time() if balancer is not None else None
    if ideal is not None:
        say(f"ideal step time (global batch / sum of speeds): {1000 * ideal:.0f} ms")
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
