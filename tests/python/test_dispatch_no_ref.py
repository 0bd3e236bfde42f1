"""No oneDNN `ref` implementation in a training step's hot path, one step of every zoo model
under ONEDNN_VERBOSE, every primitive kind but reorder checked
(benchmarks/dispatch_table.py --fail-on-ref).

On the phone's CPU (issue 11, section 4; make test-aarch64 under qemu-aarch64 -cpu cortex-a76,
or a phone) a `ref` kernel is one or two orders of magnitude slower than a JIT or GEMM-based
one. On x86-64 oneDNN has JIT kernels for every kind phalanx uses, but it also has `ref` for
any layout it is given: the weights kept in their convolution's layout (issue 17) once sent
every 3x3 backward-data convolution of ResNet-18 to `ref:any` (100 s a step instead of 0.1),
which no result check notices. Under qemu only LeNet-5 and MobileNet-v1 run (time)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = (
    "lenet5,mobilenet_v1"
    if platform.machine() == "aarch64"
    else "lenet5,resnet18,mobilenet_v1,resnet50,tiny_yolov2"
)


def test_no_reference_kernel_in_a_training_step():
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "dispatch_table.py")]
        + ["--models", MODELS, "--fail-on-ref"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stdout + r.stderr
