"""Python threads calling phalanx at once (compute releases the GIL), within the thread
contract: independent tensors and modules from any threads; one module shared by threads for
forward (also in training mode: BatchNorm's running statistics are updated under a lock) and
for backward through each thread's own graph (gradients accumulate under a lock).

Each workload (tests/python/_thread_workloads.py) runs in a fresh interpreter with a timeout,
so a crash or a hang fails its test instead of the suite. Many iterations: races are rare."""

import os
import subprocess

import pytest
from _spawn import PYTHON, python_env

HERE = os.path.dirname(os.path.abspath(__file__))
# Iterations per thread; PHX_THREAD_ITERS scales them (the TSan/ASan runs use fewer).
SCALE = float(os.environ.get("PHX_THREAD_ITERS", "1"))
TIMEOUT = float(os.environ.get("PHX_THREAD_TIMEOUT", "240"))


def run_workload(name, iterations, omp_threads):
    env = python_env(OMP_NUM_THREADS=str(omp_threads))
    cmd = [
        *PYTHON,
        os.path.join(HERE, "_thread_workloads.py"),
        name,
        str(max(1, int(iterations * SCALE))),
    ]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"")[-3000:], (e.stderr or b"")[-3000:]
        pytest.fail(f"{name} hung (no result within {TIMEOUT:.0f} s): {out}")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), (
        f"{name} failed with exit code {proc.returncode}\n"
        f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
    )


# Two OpenMP threads per Python thread as well as one: oneDNN's kernels then split work
# (and, in batch norm, meet at barriers) inside each call.
# PHX_THREAD_OMP=1 (make test-tsan) keeps one: TSan cannot follow libgomp's barriers.
OMP = [int(n) for n in os.environ.get("PHX_THREAD_OMP", "1,2").split(",")]


@pytest.mark.parametrize("omp", OMP)
def test_independent_models_forward_as_serial(omp):
    run_workload("independent_forward", 60, omp)


@pytest.mark.parametrize("omp", OMP)
def test_independent_models_train_bit_for_bit_as_serial(omp):
    run_workload("independent_training", 15, omp)


@pytest.mark.parametrize("omp", OMP)
def test_shared_model_eval_forward_as_serial(omp):
    run_workload("shared_model_eval", 60, omp)


@pytest.mark.parametrize("omp", OMP)
def test_shared_model_training_forward_and_backward(omp):
    run_workload("shared_model", 15, omp)


@pytest.mark.parametrize("omp", OMP)
def test_shared_blocked_tensor_read_by_threads(omp):
    run_workload("shared_blocked_input", 40, omp)
