"""Timing and reporting helpers shared by the benchmark modules.

The machine is small, shared and noisy, so phalanx and PyTorch are timed side by side: each
round runs one iteration of every contender, alternating which goes first, and the report
quotes medians. A slow spell then hits both frameworks instead of just one.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

Phases = dict[str, float]  # phase name -> seconds


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def alternate(
    contenders: dict[str, Callable[[], Phases]], iters: int, warmup: int
) -> dict[str, list[Phases]]:
    """Runs every contender `warmup` times, then `iters` rounds of one call each, the order
    flipped every round. Each call returns its own phase timings; returns them per contender."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    samples: dict[str, list[Phases]] = {name: [] for name in names}
    for i in range(iters):
        for name in names if i % 2 == 0 else reversed(names):
            samples[name].append(contenders[name]())
    return samples


def phase_medians(samples: list[Phases]) -> Phases:
    return {k: median([s[k] for s in samples]) for k in samples[0]}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table; floats get 3 significant-ish digits."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            if v != v:
                return "n/a"
            if abs(v) >= 100:
                return f"{v:.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            return f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# --- machine -----------------------------------------------------------------------------


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines())}


def _cpu_ghz(info: dict[str, str]) -> float:
    for key in ("CPU max MHz", "CPU MHz"):
        if key in info:
            return float(info[key]) / 1000
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"cpu MHz\s*:\s*([\d.]+)", f.read())
        if m:
            return float(m.group(1)) / 1000
    except OSError:
        pass
    return float("nan")


def machine_info() -> dict[str, object]:
    import numpy
    import torch

    import phalanx

    info = _lscpu()
    cores = os.cpu_count() or 1
    ghz = _cpu_ghz(info)
    return {
        "cpu": info.get("Model name", platform.processor()),
        "cores": cores,
        "ghz": ghz,
        "avx2_fma": "avx2" in info.get("Flags", "") and "fma" in info.get("Flags", ""),
        "avx512f": "avx512f" in info.get("Flags", "").split(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "phalanx": phalanx.__version__,
        "onednn": ".".join(str(v) for v in phalanx._C._onednn_version()),
        "torch_onednn": str(torch.backends.mkldnn.is_available()),
        "platform": platform.platform(),
    }


# --- peak memory in a fresh process -----------------------------------------------------


def vm_hwm_bytes() -> int:
    """Peak resident set size of this process (VmHWM; ru_maxrss as the fallback)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _python() -> list[str]:
    """This interpreter, with -S kept: scripts/run_with_extension.sh starts Python without the
    site hooks (which would import the editable install instead of the build under test), and
    the children must import the same phalanx (PYTHONPATH is inherited)."""
    return [sys.executable, "-S"] if sys.flags.no_site else [sys.executable]


def run_child(args: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """Runs `python benchmarks/run.py <args>` in a fresh interpreter; returns its stdout."""
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [*_python(), os.path.join(here, "run.py"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def child_result(stdout: str) -> dict:
    """The JSON a child printed on its last line starting with 'RESULT '."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"child printed no RESULT line:\n{stdout[-2000:]}")


class Worker:
    """A fresh interpreter running `run.py --child worker ...`, driven one JSON command per
    line. Each framework gets its own process: two OpenMP runtimes (torch bundles its own
    libgomp) in one process spin against each other and slow both down several-fold."""

    def __init__(self, args: list[str]) -> None:
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen(
            [*_python(), os.path.join(here, "run.py"), "--child", "worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def call(self, command: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        raise RuntimeError(f"worker died on {command} (exit {self.proc.wait()})")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
