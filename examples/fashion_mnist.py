"""Train a small CNN on Fashion-MNIST on one process and print its test accuracy.

    python examples/fashion_mnist.py --epochs 1          # `make demo`
    python examples/fashion_mnist.py --epochs 5 --metrics runs/fmnist.jsonl

The data are the real IDX files of the Debian package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist), or any directory given with --data.

There is no nn.Module or optim yet, so the model is a handful of explicit parameter tensors
run through phalanx.nn.functional, initialised as PyTorch initialises nn.Conv2d and
nn.Linear (Kaiming-uniform), and trained by SGD with momentum written out in Python:

    conv 1->C1 3x3 pad 1, batch norm, relu, max pool 2     28x28 -> 14x14
    conv C1->C2 3x3 pad 1, batch norm, relu, max pool 2    14x14 -> 7x7
    flatten, linear C2*49 -> 128, relu, dropout, linear 128 -> 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import phalanx
import phalanx.nn.functional as F
from phalanx.utils.data import load_fashion_mnist

try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional: plain prints instead
    tqdm = None

MEAN, STD = 0.2860, 0.3530  # of the Fashion-MNIST training pixels, scaled to [0, 1]
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate (default 0.05)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4,
                   help="L2 penalty on conv and linear weights (default 5e-4)")
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="learning rate over all steps: cosine decay to 0, or constant")
    p.add_argument("--channels", type=int, nargs=2, default=(32, 64), metavar=("C1", "C2"),
                   help="output channels of the two convolutions (default 32 64)")
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--limit-train", type=int, default=None, metavar="N",
                   help="train on the first N images of the shuffled training set only")
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="compute threads (default: phalanx's default)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="directory holding the Fashion-MNIST IDX files (gzip or plain)")
    p.add_argument("--metrics", default=None, metavar="FILE.jsonl",
                   help="append one JSON line per epoch: epoch, train_loss, test_acc, seconds")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "test_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit_train is not None and args.limit_train < 1:
        p.error("--limit-train must be at least 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    return args


# ----------------------------------------------------------------------------------------------
# Model: explicit parameters, PyTorch's default initialisation.

def kaiming_uniform(rng: np.random.Generator, shape, fan_in: int) -> phalanx.Tensor:
    """nn.init.kaiming_uniform_(w, a=sqrt(5)), PyTorch's default for Conv2d and Linear weights:
    U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + 5)), i.e. b = 1/sqrt(fan_in).
    PyTorch's default bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), is the same bound."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    bound = gain * math.sqrt(3.0 / fan_in)
    w = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return phalanx.from_numpy(w).requires_grad_(True)


def ones(n):
    return phalanx.ones(n).requires_grad_(True)


def zeros(n):
    return phalanx.zeros(n).requires_grad_(True)


class SmallCNN:
    """The parameters and running statistics of the CNN, and its forward pass."""

    def __init__(self, rng: np.random.Generator, c1: int = 32, c2: int = 64, hidden: int = 128,
                 classes: int = 10, dropout: float = 0.25):
        self.dropout = dropout
        # The convolutions have no bias: the batch norm after each would cancel it.
        self.conv1_w = kaiming_uniform(rng, (c1, 1, 3, 3), 1 * 9)
        self.bn1_w, self.bn1_b = ones(c1), zeros(c1)
        self.bn1_mean, self.bn1_var = phalanx.zeros(c1), phalanx.ones(c1)
        self.conv2_w = kaiming_uniform(rng, (c2, c1, 3, 3), c1 * 9)
        self.bn2_w, self.bn2_b = ones(c2), zeros(c2)
        self.bn2_mean, self.bn2_var = phalanx.zeros(c2), phalanx.ones(c2)
        flat = c2 * 7 * 7
        self.fc1_w = kaiming_uniform(rng, (hidden, flat), flat)
        self.fc1_b = kaiming_uniform(rng, (hidden,), flat)
        self.fc2_w = kaiming_uniform(rng, (classes, hidden), hidden)
        self.fc2_b = kaiming_uniform(rng, (classes,), hidden)
        self.training = True

    def named_parameters(self):
        return [(k, v) for k, v in vars(self).items()
                if isinstance(v, phalanx.Tensor) and v.requires_grad]

    def parameters(self):
        return [v for _, v in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _bn(self, x, mean, var, w, b):
        return F.batch_norm(x, mean, var, w, b, training=self.training)

    def __call__(self, x):
        x = F.conv2d(x, self.conv1_w, padding=1)
        x = self._bn(x, self.bn1_mean, self.bn1_var, self.bn1_w, self.bn1_b)
        x = F.max_pool2d(F.relu(x), 2)
        x = F.conv2d(x, self.conv2_w, padding=1)
        x = self._bn(x, self.bn2_mean, self.bn2_var, self.bn2_w, self.bn2_b)
        x = F.max_pool2d(F.relu(x), 2)
        x = x.flatten(1)
        x = F.relu(F.linear(x, self.fc1_w, self.fc1_b))
        x = F.dropout(x, self.dropout, training=self.training)
        return F.linear(x, self.fc2_w, self.fc2_b)


# ----------------------------------------------------------------------------------------------
# Optimiser: SGD with momentum and weight decay, as torch.optim.SGD computes it.

class SGD:
    def __init__(self, named_params, lr: float, momentum: float, weight_decay: float):
        self.params = [p for _, p in named_params]
        # Decay conv and linear weights only, not batch-norm scales or biases.
        self.decay = [weight_decay if n.endswith("_w") and not n.startswith("bn") else 0.0
                      for n, _ in named_params]
        self.lr, self.momentum = lr, momentum
        self.bufs = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with phalanx.no_grad():
            for i, p in enumerate(self.params):
                g = p.grad
                if g is None:
                    continue
                if self.decay[i]:
                    g = g + p * self.decay[i]
                buf = self.bufs[i]
                if buf is None:
                    buf = self.bufs[i] = g.clone()
                else:
                    buf.mul_(self.momentum).add_(g)
                p.add_(buf * -self.lr)


# ----------------------------------------------------------------------------------------------
# Data

def to_input(images_u8: np.ndarray) -> phalanx.Tensor:
    """uint8 [B, 28, 28] -> normalised float32 [B, 1, 28, 28]."""
    x = images_u8.astype(np.float32)
    x *= 1.0 / (255.0 * STD)
    x -= MEAN / STD
    return phalanx.from_numpy(x.reshape(-1, 1, 28, 28))


def evaluate(model: SmallCNN, images: np.ndarray, labels: np.ndarray, batch_size: int):
    """(accuracy, mean loss) over the whole set, in batches, with running BN statistics."""
    model.training = False
    correct, loss_sum = 0, 0.0
    with phalanx.no_grad():
        for i in range(0, len(images), batch_size):
            out = model(to_input(images[i:i + batch_size]))
            y = labels[i:i + batch_size]
            loss_sum += F.cross_entropy(out, phalanx.from_numpy(y), reduction="sum").item()
            correct += int((out.argmax(1).numpy() == y).sum())
    model.training = True
    return correct / len(images), loss_sum / len(images)


def fmt_seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 120 else f"{int(s) // 60}m{int(s) % 60:02d}s"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        phalanx.set_num_threads(args.threads)
    phalanx.manual_seed(args.seed)  # dropout masks
    rng = np.random.default_rng(args.seed)  # initialisation and shuffling

    try:
        train_x, train_y = load_fashion_mnist(args.data, train=True)
        test_x, test_y = load_fashion_mnist(args.data, train=False)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    model = SmallCNN(rng, *args.channels, dropout=args.dropout)
    opt = SGD(model.named_parameters(), args.lr, args.momentum, args.weight_decay)

    n_train = len(train_x) if args.limit_train is None else min(args.limit_train, len(train_x))
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    print(f"Fashion-MNIST: {n_train} training images (of {len(train_x)}), "
          f"{len(test_x)} test images")
    print(f"model: conv {args.channels[0]}/{args.channels[1]} CNN, "
          f"{model.num_parameters():,} parameters; SGD lr {args.lr} ({args.schedule}), "
          f"momentum {args.momentum}, weight decay {args.weight_decay}; batch {args.batch_size}; "
          f"{phalanx.get_num_threads()} threads")

    use_bar = tqdm is not None and not args.no_progress
    step = 0
    test_acc = 0.0
    for epoch in range(1, args.epochs + 1):
        perm = rng.permutation(len(train_x))[:n_train]
        t0 = time.perf_counter()
        loss_sum, seen = 0.0, 0
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{args.epochs}", unit="batch",
                   leave=True, dynamic_ncols=True) if use_bar else None
        report_every = max(1, steps_per_epoch // 10)
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            x, y = to_input(train_x[idx]), phalanx.from_numpy(train_y[idx])
            if args.schedule == "cosine":
                opt.lr = 0.5 * args.lr * (1.0 + math.cos(math.pi * step / total_steps))
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1

            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{opt.lr:.4f}", refresh=False)
                bar.update(1)
            elif (b + 1) % report_every == 0 or b + 1 == steps_per_epoch:
                el = time.perf_counter() - t0
                print(f"epoch {epoch} [{b + 1}/{steps_per_epoch}] loss {loss_sum / seen:.4f} "
                      f"({seen / el:.0f} img/s)", flush=True)
        if bar is not None:
            bar.close()
        train_seconds = time.perf_counter() - t0
        train_loss = loss_sum / seen

        te0 = time.perf_counter()
        test_acc, test_loss = evaluate(model, test_x, test_y, args.test_batch_size)
        eval_seconds = time.perf_counter() - te0
        seconds = train_seconds + eval_seconds
        print(f"epoch {epoch}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
              f"test accuracy {100 * test_acc:.2f}%; train {fmt_seconds(train_seconds)} "
              f"({seen / train_seconds:.0f} img/s), eval {fmt_seconds(eval_seconds)}",
              flush=True)
        if args.metrics:
            d = os.path.dirname(args.metrics)
            if d:
                os.makedirs(d, exist_ok=True)
            with open(args.metrics, "a") as f:
                f.write(json.dumps({"epoch": epoch, "train_loss": round(train_loss, 6),
                                    "test_loss": round(test_loss, 6),
                                    "test_acc": round(test_acc, 6),
                                    "seconds": round(seconds, 3),
                                    "train_images": seen}) + "\n")

    print(f"test accuracy: {100 * test_acc:.2f}% ({len(test_x)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
