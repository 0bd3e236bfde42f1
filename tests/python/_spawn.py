"""Starts a function of a test module on N local ranks (fresh interpreters on loopback) and
collects what each returned: the distributed tests' harness.

The children import the same phalanx as the test (same sys.path, same -S flag), so this works
under scripts/run_with_extension.sh and the editable install alike. Every run is bounded: a
group that is not done within `timeout` is killed and reported.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(module: str, func: str, world: int, args=(), *, timeout: float = 90, env=None):
    """Runs module.func(rank, world, *args) on `world` ranks after init_process_group; returns
    the list of return values by rank. Raises AssertionError with every failing rank's output."""
    port = free_port()
    base = dict(os.environ)
    base["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    base.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        OMP_NUM_THREADS="1",
        PHALANX_JOB_ID=f"test-{port}",
    )
    if env:
        base.update(env)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "args.pkl"), "wb") as f:
            pickle.dump(args, f)
        code = (
            f"import sys; sys.path.insert(0, {HERE!r}); import _spawn; "
            f"_spawn._child({module!r}, {func!r}, {tmp!r})"
        )
        cmd = [sys.executable] + (["-S"] if sys.flags.no_site else []) + ["-c", code]
        procs = [
            subprocess.Popen(
                cmd,
                env=dict(base, RANK=str(r), LOCAL_RANK=str(r)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for r in range(world)
        ]
        deadline = time.monotonic() + timeout
        outputs = []
        try:
            for p in procs:
                try:
                    out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, _ = p.communicate()
                    out += f"\n[killed by the test after {timeout} s]"
                outputs.append(out)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        failed = [r for r, p in enumerate(procs) if p.returncode != 0]
        if failed:
            report = "\n".join(
                f"--- rank {r} (exit {procs[r].returncode}):\n{outputs[r]}" for r in failed
            )
            raise AssertionError(f"ranks {failed} failed:\n{report}")
        results = []
        for r in range(world):
            with open(os.path.join(tmp, f"result{r}.pkl"), "rb") as f:
                results.append(pickle.load(f))
        return results


def _child(module: str, func: str, tmp: str) -> None:
    import importlib

    import phalanx.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    with open(os.path.join(tmp, "args.pkl"), "rb") as f:
        args = pickle.load(f)
    fn = getattr(importlib.import_module(module), func)
    dist.init_process_group("gloo", timeout=60)
    try:
        result = fn(rank, world, *args)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(tmp, f"result{rank}.pkl"), "wb") as f:
        pickle.dump(result, f)
