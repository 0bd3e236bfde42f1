"""Train a small CNN on Fashion-MNIST, on one process or data-parallel on many, and print its
test accuracy.

    python examples/fashion_mnist.py                      # the full recipe: >= 91% test accuracy
    phalanx launch --nproc 2 examples/fashion_mnist.py --epochs 3     # `make demo`: 2 ranks
    python examples/fashion_mnist.py --metrics runs/fmnist.jsonl
    phalanx sweep --metric test_acc --mode max --out runs/lr --grid lr=0.1,0.05,0.02 \
        examples/fashion_mnist.py --epochs 1 --limit-train 6000

Written exactly as a PyTorch script would be: an nn.Module, a DataLoader over the dataset with
transforms, SGD with a cosine schedule. Started by a launcher (RANK and WORLD_SIZE set), the
same script trains one model on all ranks: each rank takes its share of every global batch
(--batch-size is the global batch, so the recipe is the same for any number of ranks) through
a DistributedSampler, DistributedDataParallel averages the gradients, and the test set is split
between the ranks and the counts summed. Only rank 0 prints.

The data are the real IDX files of the Debian package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist), or any directory given with --data. The same recipe in
PyTorch is benchmarks/fashion_mnist_torch.py.
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
from phalanx.nn.parallel import DistributedDataParallel
from phalanx.utils.data import DataLoader, DistributedSampler, FashionMNIST, Subset
from phalanx.utils.data import transforms as T
from phalanx.utils.metrics import MetricsLogger
from phalanx.utils.progress import progress  # a tqdm bar on a terminal, lines in a log

MEAN, STD = 0.2860, 0.3530  # of the Fashion-MNIST training pixels, scaled to [0, 1]


class SmallCNN(nn.Module):
    """Two conv blocks (conv, batch norm, relu, max pool), then a two-layer classifier."""

    def __init__(self, c1: int = 32, c2: int = 64, hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),  # batch norm makes a bias redundant
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument(
        "--batch-size", type=int, default=64, help="global batch (split between the ranks)"
    )
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--channels", type=int, nargs=2, default=(32, 64), metavar=("C1", "C2"))
    p.add_argument(
        "--limit-train",
        type=int,
        default=None,
        metavar="N",
        help="train on a random subset of N images (quick runs)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="compute threads")
    p.add_argument(
        "--workers", type=int, default=0, help="data-loading threads (0: load in the training loop)"
    )
    p.add_argument("--data", default=None, help="directory of the IDX files")
    p.add_argument(
        "--metrics",
        default=None,
        metavar="FILE.jsonl",
        help="append one record per epoch (.jsonl or .csv)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def train_epoch(model, loader, opt, sched, epoch, epochs, show_progress):
    model.train()
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)  # a different shuffle every epoch, the same on all ranks
    total, count = 0.0, 0
    batches = loader
    if show_progress:
        batches = progress(loader, desc=f"epoch {epoch}/{epochs}", unit="batch")
    for images, labels in batches:
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(labels)
        count += len(labels)
        if show_progress:
            batches.set_postfix(loss=f"{total / count:.4f}", lr=f"{sched.get_last_lr()[0]:.4f}")
    return total / count


@phalanx.no_grad()
def evaluate(model, loader, distributed: bool):
    """Accuracy and mean loss over the loader's images (summed over ranks when distributed)."""
    model.eval()
    correct, total, loss = 0, 0, 0.0
    for images, labels in loader:
        logits = model(images)
        loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        total += len(labels)
    if distributed:
        sums = phalanx.tensor([float(correct), float(total), loss], dtype=phalanx.float32)
        dist.all_reduce(sums)
        correct, total, loss = sums.tolist()
        total = int(round(total))
    return correct / total, loss / total, total


def main(argv=None) -> int:
    args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if args.batch_size % world:
        print(f"error: --batch-size {args.batch_size} is not divisible by {world} ranks")
        return 2
    if args.threads is not None:
        phalanx.set_num_threads(args.threads)
    phalanx.manual_seed(args.seed)  # initialisation and dropout (DDP copies rank 0's weights)

    normalize = T.Normalize((MEAN,), (STD,))
    try:
        train_set = FashionMNIST(
            args.data,
            train=True,
            transform=T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), normalize]),
        )
        test_set = FashionMNIST(
            args.data, train=False, transform=T.Compose([T.ToTensor(), normalize])
        )
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.limit_train:
        perm = phalanx.randperm(len(train_set), generator=phalanx.Generator(args.seed))
        train_set = Subset(train_set, perm[: args.limit_train].tolist())

    local_batch = args.batch_size // world
    if distributed:
        sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=args.seed)
        train_loader = DataLoader(
            train_set, batch_size=local_batch, sampler=sampler, num_workers=args.workers
        )
        # Every rank evaluates its own slice of the test set; the counts are summed.
        test_set = Subset(test_set, list(range(rank, len(test_set), world)))
    else:
        train_loader = DataLoader(
            train_set,
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.workers,
            generator=phalanx.Generator(args.seed),
        )
    test_loader = DataLoader(test_set, batch_size=1000, num_workers=args.workers)

    net = SmallCNN(*args.channels)
    model = DistributedDataParallel(net) if distributed else net
    # Weight decay on conv and linear weights only, not on batch-norm scales or biases.
    decay = [p for n, p in net.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in net.named_parameters() if p.dim() <= 1]
    opt = phalanx.optim.SGD(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
        momentum=args.momentum,
        nesterov=True,
    )
    sched = phalanx.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * len(train_loader))

    say = print if rank == 0 else (lambda *a, **k: None)
    n_params = sum(p.numel() for p in net.parameters())
    n_train = len(train_set)
    layout = f"{world} ranks x {local_batch}" if distributed else f"{args.batch_size}"
    n_test = len(test_loader.dataset) * world if distributed else len(test_set)
    say(
        f"Fashion-MNIST: {n_train} training / {n_test} test images; "
        f"model {n_params:,} parameters; SGD lr {args.lr} (cosine), batch {layout}; "
        f"{phalanx.get_num_threads()} threads per rank"
    )
    show_progress = not args.no_progress and rank == 0
    acc = 0.0
    metrics = MetricsLogger(args.metrics) if args.metrics and rank == 0 else None
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        train_loss = train_epoch(model, train_loader, opt, sched, epoch, args.epochs, show_progress)
        t1 = time.perf_counter()
        acc, test_loss, n_test = evaluate(net, test_loader, distributed)
        t2 = time.perf_counter()
        say(
            f"epoch {epoch}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
            f"test accuracy {100 * acc:.2f}%; train {t1 - t0:.1f}s "
            f"({n_train / (t1 - t0):.0f} img/s), eval {t2 - t1:.1f}s",
            flush=True,
        )
        # a sweep's trial reports every epoch (phalanx.report is a no-op outside a sweep)
        phalanx.report(step=epoch, test_acc=acc, test_loss=test_loss, train_loss=train_loss)
        if metrics is not None:
            metrics.log(
                step=epoch,
                train_loss=train_loss,
                test_loss=test_loss,
                test_acc=acc,
                seconds=t2 - t0,
                ranks=world,
            )
    say(f"test accuracy: {100 * acc:.2f}% ({n_test} images)")
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
