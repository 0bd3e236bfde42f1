"""On the phone's CPU, no oneDNN `ref` implementation in a training step's hot path (issue 11,
section 4): one step of LeNet-5 and MobileNet-v1 under ONEDNN_VERBOSE, every primitive kind but
reorder checked (benchmarks/dispatch_table.py --fail-on-ref). Runs where phalanx runs on
aarch64 (make test-aarch64, under qemu-aarch64 -cpu cortex-a76, or a phone); on x86-64 oneDNN
has JIT kernels for every kind phalanx uses (benchmarks/dispatch_table.py shows them)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(platform.machine() != "aarch64", reason="checks the aarch64 dispatch only")
def test_no_reference_kernel_in_a_training_step_on_aarch64():
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "dispatch_table.py")]
        + ["--models", "lenet5,mobilenet_v1", "--fail-on-ref"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stdout + r.stderr
