"""phalanx.multiprocessing: Python's multiprocessing under torch.multiprocessing's name.

Scripts import it as ``import torch.multiprocessing as mp`` and call ``mp.spawn``. phalanx
tensors live in ordinary process memory, so no special sharing is needed: this module is the
standard library's plus ``spawn``, which starts ``nprocs`` processes running ``fn(i, *args)``
with the "spawn" start method (a fresh interpreter each, no forked OpenMP or Gloo state).
"""

from __future__ import annotations

import multiprocessing as _mp
from multiprocessing import *  # noqa: F403 - torch.multiprocessing re-exports these too


class ProcessRaisedException(Exception):
    """A spawned process exited with a non-zero code (its traceback went to its stderr)."""


class ProcessContext:
    """The processes started by spawn(join=False); join() waits for them all."""

    def __init__(self, processes):
        self.processes = processes

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        for p in self.processes:
            p.join(timeout)
        failed = [(i, p.exitcode) for i, p in enumerate(self.processes) if p.exitcode]
        if failed:
            for p in self.processes:
                if p.is_alive():
                    p.terminate()
            i, code = failed[0]
            raise ProcessRaisedException(
                f"process {i} of {len(self.processes)} exited with code {code}"
            )
        return all(p.exitcode is not None for p in self.processes)


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    if not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"spawn: nprocs must be a positive int, got {nprocs!r}")
    ctx = _mp.get_context(start_method)
    processes = [ctx.Process(target=fn, args=(i, *args), daemon=daemon) for i in range(nprocs)]
    for p in processes:
        p.start()
    context = ProcessContext(processes)
    if not join:
        return context
    context.join()
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Runs fn(i, *args) for i in range(nprocs), each in a new process; with join=True waits
    and raises ProcessRaisedException naming the first process that failed."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
