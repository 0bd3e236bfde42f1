"""The distributed examples run end to end under the launcher (tiny settings, bounded time):
MobileNet-v1 large-batch with unequal batch shares and fp16 compression on synthetic data, and
the Fashion-MNIST demo script on a small subset."""

from __future__ import annotations

import os

from _spawn import run_python

from phalanx.utils.metrics import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def launch(*args, timeout=180):
    proc = run_python(
        ["-m", "phalanx.distributed.launch", "--nproc", "2", *args], timeout=timeout, cwd=ROOT
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_mobilenet_large_batch_with_shares_and_compression(tmp_path):
    metrics = tmp_path / "m.jsonl"
    code, out = launch(
        "examples/mobilenet_large_batch.py", "--metrics", str(metrics),
        "--data", "synthetic", "--image-size", "32", "--global-batch", "24",
        "--shares", "1,2", "--compress", "fp16", "--steps", "3", "--width", "0.25",
    )  # fmt: skip
    assert code == 0, out
    assert "per rank [8, 16]" in out, out
    assert "final test accuracy:" in out, out
    (record,) = read_metrics(metrics)  # one epoch, logged by rank 0 only
    assert record["step"] == 1 and 0 <= record["test_acc"] <= 1 and record["images_per_s"] > 0


def test_fashion_mnist_example_runs_data_parallel():
    code, out = launch(
        "examples/fashion_mnist.py", "--epochs", "1", "--limit-train", "512", "--no-progress"
    )
    assert code == 0, out
    assert "2 ranks x 32" in out, out
    assert "test accuracy:" in out and "(10000 images)" in out, out
