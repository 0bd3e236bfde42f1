"""Elastic test jobs: ranks of launch_helpers/elastic_train_rank.py around a store this test
process hosts (as the launcher does: the store must outlive any rank), with every wait bounded
and every process killed at the end."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import tempfile
import time

import numpy as np
from _spawn import _kill_group, _read, free_port, python_env, start_python

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "launch_helpers", "elastic_train_rank.py")


class Job:
    def __init__(self, out: str, world: int, argv: list[str], *, hb_timeout: str = "3", **env):
        import phalanx.distributed as dist

        self.out = out
        self.argv = argv
        self.job_id = f"elastic-{os.getpid()}-{free_port()}"
        self.store = dist.TCPStore("127.0.0.1", 0, is_master=True, timeout=30, job_id=self.job_id)
        self.env = python_env(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(self.store.port),
            PHALANX_STORE_EXTERNAL="1",
            PHALANX_JOB_ID=self.job_id,
            WORLD_SIZE=str(world),
            OMP_NUM_THREADS="1",
            PHALANX_HEARTBEAT_INTERVAL="0.5",
            PHALANX_HEARTBEAT_TIMEOUT=hb_timeout,
            **env,
        )
        self.procs: dict[int, subprocess.Popen] = {}
        self.files: dict[int, tuple] = {}
        for r in range(world):
            self.start(r, RANK=str(r), LOCAL_RANK=str(r))

    def start(self, member: int, **env) -> None:
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.files[member] = (out, err)
        self.procs[member] = start_python(
            [HELPER, self.out, *self.argv], env=dict(self.env, **env), stdout=out, stderr=err
        )

    def output(self, member: int) -> str:
        out, err = self.files[member]
        return _read(out) + _read(err)

    def outputs(self) -> str:
        return "\n".join(f"--- member {m}:\n{self.output(m)}" for m in self.procs)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s\n{self.outputs()}") from None
            time.sleep(0.05)

    def finish(self, timeout: float) -> dict[int, int]:
        """Every process's exit code, waiting `timeout` s in total (then killed: -9)."""
        deadline = time.monotonic() + timeout
        codes = {}
        for m, p in self.procs.items():
            try:
                codes[m] = p.wait(timeout=max(0.5, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(p)
                p.wait()
                text = self.outputs()
                raise AssertionError(f"member {m} still ran after {timeout} s\n{text}") from None
        return codes

    def close(self) -> None:
        for p in self.procs.values():
            _kill_group(p)
            p.wait()
        for out, err in self.files.values():
            out.close()
            err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def signal(self, member: int, sig) -> None:
        os.kill(self.procs[member].pid, sig)


def load(path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f)


def reference_run(out: str, state_file: str, world: int, argv: list[str], timeout: float):
    """The non-elastic run of `world` ranks from `state_file`; returns rank 0's final dump."""
    port = free_port()
    env = python_env(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        OMP_NUM_THREADS="1",
        PHALANX_JOB_ID=f"elastic-ref-{os.getpid()}-{port}",
    )
    procs = []
    try:
        for r in range(world):
            procs.append(
                start_python(
                    [HELPER, out, *argv, "--reference", state_file],
                    env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            )
        for p in procs:
            text = p.communicate(timeout=timeout)[0].decode(errors="replace")
            assert p.returncode == 0, text
    finally:
        for p in procs:
            _kill_group(p)
            p.wait()
    return load(os.path.join(out, "reference_r0.pkl"))


def same_params(a: dict, b: dict) -> bool:
    return len(a["params"]) == len(b["params"]) and all(
        np.array_equal(x, y) for x, y in zip(a["params"], b["params"])
    )


__all__ = ["Job", "load", "reference_run", "same_params", "signal"]
