"""MobileNet-v1 trained data-parallel with a large global batch: the 138-phone recipe.

    phalanx launch --nproc 2 examples/mobilenet_large_batch.py                 # this machine
    phalanx launch --hosts phones.txt examples/mobilenet_large_batch.py \\
        --global-batch 8192 --epochs 30                                        # a phone rack
    python examples/mobilenet_large_batch.py --data synthetic --steps 5        # a smoke run

Every rank computes its share of each global batch; DistributedDataParallel all-reduces the
gradients in buckets while backward runs; the optimizer is LARS with the learning rate scaled
linearly from `--base-lr` at batch 256 to the global batch, a gradual warmup and cosine decay
(``phalanx.optim.large_batch_optimizer``). `--shares 1,1,2` gives ranks unequal parts of the
global batch (a faster phone takes more) and weights their gradients by those parts.

Data: Fashion-MNIST (real images from the Debian package, 28x28 grey, the net's stem adapted
to one channel) or `--data synthetic` (random images of any size, for timing and smoke runs;
its accuracy means nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import phalanx
import phalanx.distributed as dist
import phalanx.nn.functional as F
from phalanx.models import mobilenet_v1
from phalanx.nn.parallel import DistributedDataParallel
from phalanx.utils.data import DataLoader, FashionMNIST, Subset, SyntheticImages
from phalanx.utils.data import transforms as T
from phalanx.utils.metrics import MetricsLogger

MEAN, STD = 0.2860, 0.3530


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="fashion-mnist", help="'fashion-mnist', 'synthetic' or a dir")
    p.add_argument("--global-batch", type=int, default=1024)
    p.add_argument("--shares", default=None, help="relative batch share per rank, e.g. 1,1,2")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="stop after N steps (smoke runs)")
    p.add_argument("--base-lr", type=float, default=0.1, help="learning rate at batch 256")
    p.add_argument("--warmup-epochs", type=float, default=2.0)
    p.add_argument("--weight-decay", type=float, default=5e-5)
    p.add_argument("--trust", type=float, default=0.02, help="LARS trust coefficient")
    p.add_argument("--optimizer", choices=("lars", "sgd"), default="lars")
    p.add_argument("--width", type=float, default=0.5, help="MobileNet width multiplier")
    p.add_argument("--image-size", type=int, default=64, help="synthetic images only")
    p.add_argument("--bucket-mb", type=float, default=4.0)
    p.add_argument("--compress", choices=("none", "fp16", "bf16"), default="none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", default=None, help="append one record per epoch (.jsonl/.csv)")
    return p.parse_args(argv)


def batch_shares(args, world: int) -> list[int]:
    weights = [1.0] * world if args.shares is None else [float(s) for s in args.shares.split(",")]
    if len(weights) != world or min(weights) <= 0:
        raise ValueError(f"--shares needs {world} positive numbers, got {args.shares!r}")
    sizes = [int(args.global_batch * w / sum(weights)) for w in weights]
    sizes[0] += args.global_batch - sum(sizes)  # rounding remainder
    if min(sizes) < 1:
        raise ValueError(f"--global-batch {args.global_batch} is too small for shares {weights}")
    return sizes


def datasets(args):
    if args.data == "synthetic":
        size = args.image_size
        return (
            SyntheticImages(20 * args.global_batch, (1, size, size), 10, seed=args.seed),
            SyntheticImages(2000, (1, size, size), 10, seed=args.seed + 1),
        )
    root = None if args.data == "fashion-mnist" else args.data
    norm = T.Normalize((MEAN,), (STD,))
    train = FashionMNIST(root, True, T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), norm]))
    return train, FashionMNIST(root, False, T.Compose([T.ToTensor(), norm]))


@phalanx.no_grad()
def evaluate(net, loader, distributed):
    net.eval()
    correct = total = 0
    for images, labels in loader:
        correct += (net(images).argmax(1) == labels).sum().item()
        total += len(labels)
    if distributed:
        counts = phalanx.tensor([correct, total], dtype=phalanx.int64)
        dist.all_reduce(counts)
        correct, total = counts.tolist()
    return correct / max(total, 1)


class ShareSampler:
    """A rank's share of an epoch: `length` indices from `start` of a permutation that is the
    same on every rank (seed + epoch), so the ranks' shares never overlap. (DistributedSampler
    splits evenly; here the shares follow the ranks' speeds.)"""

    def __init__(self, n: int, start: int, length: int, seed: int):
        self.n, self.start, self.length, self.seed = n, start, length, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        perm = phalanx.randperm(self.n, generator=phalanx.Generator(self.seed + self.epoch))
        return iter(perm[self.start : self.start + self.length].tolist())

    def __len__(self) -> int:
        return self.length


def main(argv=None) -> int:
    args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    say = print if rank == 0 else (lambda *a, **k: None)
    try:
        sizes = batch_shares(args, world)
        train_set, test_set = datasets(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    phalanx.manual_seed(args.seed)

    # Every rank runs the same number of steps, rank r reading sizes[r] samples per step.
    steps_per_epoch = len(train_set) // args.global_batch
    if steps_per_epoch == 0:
        print(f"error: fewer than --global-batch {args.global_batch} training images")
        return 2
    sampler = ShareSampler(
        len(train_set),
        start=sum(sizes[:rank]) * steps_per_epoch,
        length=sizes[rank] * steps_per_epoch,
        seed=args.seed,
    )
    train_loader = DataLoader(train_set, batch_size=sizes[rank], sampler=sampler, drop_last=True)
    test_part = Subset(test_set, list(range(rank, len(test_set), world)))
    test_loader = DataLoader(test_part, batch_size=500)

    net = mobilenet_v1(num_classes=10, width_mult=args.width, in_channels=1)
    model = net
    if distributed:
        model = DistributedDataParallel(
            net,
            bucket_cap_mb=args.bucket_mb,
            batch_weighting="local_batch" if args.shares else "uniform",
        )
        if args.compress != "none":
            from phalanx.distributed.algorithms.ddp_comm_hooks import (
                bf16_compress_hook,
                fp16_compress_hook,
            )

            hook = fp16_compress_hook if args.compress == "fp16" else bf16_compress_hook
            model.register_comm_hook(None, hook)
    opt, sched = phalanx.optim.large_batch_optimizer(
        net,
        args.global_batch,
        steps_per_epoch,
        args.epochs,
        base_lr=args.base_lr,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        trust_coefficient=args.trust,
        optimizer=args.optimizer,
    )
    say(
        f"MobileNet-v1 x{args.width} on {args.data}: {world} rank(s), global batch "
        f"{args.global_batch} (per rank {sizes}), {steps_per_epoch} steps/epoch, "
        f"{args.optimizer.upper()} peak lr {opt.param_groups[0]['lr']:.3f} after warmup"
    )
    step = 0
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        net.train()
        t0 = time.perf_counter()
        steps_before = step
        for images, labels in train_loader:
            loss = F.cross_entropy(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 10 == 0 or step == 1:
                say(f"step {step}: loss {loss.item():.4f}, lr {sched.get_last_lr()[0]:.4f}")
            if args.steps and step >= args.steps:
                break
        seconds = time.perf_counter() - t0
        acc = evaluate(net, test_loader, distributed)
        throughput = (step - steps_before) * args.global_batch / seconds
        say(f"epoch {epoch}: test accuracy {100 * acc:.2f}%, {throughput:.0f} img/s over all ranks")
        # to a sweep running this script (a no-op otherwise), and to --metrics
        phalanx.report(step=epoch, test_acc=acc, images_per_s=throughput)
        if args.metrics and rank == 0:
            MetricsLogger(args.metrics).log(step=epoch, test_acc=acc, images_per_s=throughput)
        if args.steps and step >= args.steps:
            break
    say(f"final test accuracy: {100 * acc:.2f}%")
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
