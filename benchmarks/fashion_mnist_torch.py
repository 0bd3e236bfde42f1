"""The recipe of examples/fashion_mnist.py written in PyTorch, to compare accuracy and speed.

    python benchmarks/fashion_mnist_torch.py --epochs 6

Same model, initialisation scheme (PyTorch's defaults, which phalanx copies), data,
normalisation, random horizontal flips, batch size, SGD (nesterov momentum, weight decay on
conv/linear weights only) and per-step cosine schedule. Only the random streams differ.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from phalanx.utils.data import load_fashion_mnist  # the same IDX files, as numpy arrays

MEAN, STD = 0.2860, 0.3530


def small_cnn(c1=32, c2=64, hidden=128, dropout=0.25):
    return nn.Sequential(
        nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ),
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        ),
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--metrics", default=None)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    def prepare(train):
        images, labels = load_fashion_mnist(train=train)
        x = (torch.from_numpy(images).float().div_(255).sub_(MEAN).div_(STD)).unsqueeze(1)
        return x, torch.from_numpy(labels.astype(np.int64))

    train_x, train_y = prepare(True)
    test_x, test_y = prepare(False)
    model = small_cnn()
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
    )
    steps_per_epoch = (len(train_x) + args.batch_size - 1) // args.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x))
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            x, y = train_x[idx], train_y[idx]
            flip = torch.rand(len(idx)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            correct = sum(
                (model(test_x[i : i + 1000]).argmax(1) == test_y[i : i + 1000]).sum().item()
                for i in range(0, len(test_x), 1000)
            )
        acc = correct / len(test_x)
        t2 = time.perf_counter()
        print(
            f"epoch {epoch}: train loss {total / len(train_x):.4f}, "
            f"test accuracy {100 * acc:.2f}%; "
            f"train {t1 - t0:.1f}s ({len(train_x) / (t1 - t0):.0f} img/s), eval {t2 - t1:.1f}s",
            flush=True,
        )
        if args.metrics:
            with open(args.metrics, "a") as f:
                f.write(
                    json.dumps(
                        {
                            "epoch": epoch,
                            "train_loss": total / len(train_x),
                            "test_acc": acc,
                            "seconds": t2 - t0,
                        }
                    )
                    + "\n"
                )
    print(f"test accuracy: {100 * acc:.2f}% ({len(test_x)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
