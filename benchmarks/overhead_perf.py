"""Where one phalanx training step spends its CPU time: inside compute kernels or outside them
(Python, bindings, autograd, allocation), measured with `perf record` (issue 17).

    python benchmarks/overhead_perf.py --model lenet --batch 32 --threads 1 [--steps 1500]

A child process trains `--steps` iterations (forward + cross_entropy, backward, SGD step,
zero_grad; benchmarks/models.py's phalanx_trainer) under `perf record`, which samples the
instruction pointer. Each sample's symbol is then classified (`classify`):

- kernel: oneDNN's generated code (perf's `[JIT]`), libdnnl's compiled code other than its
  API entry points (`dnnl_*`, the ITT hooks), and phalanx's own compute loops in the
  extension (KERNEL_SYMBOLS: ReLU, pooling, the optimizers' element loops, ...);
- outside: everything else: the Python interpreter, pybind11, autograd, primitive and
  tensor bookkeeping in the extension, malloc/free, libstdc++, the OS kernel.

Samples count the process's user-space CPU time (`cpu-clock:u`: the OS kernel's share on a
shared machine is mostly other processes' interrupts, network softirqs, handled on our time),
so the share is much less sensitive to other load than a wall-clock difference would be (the
step times printed next to it are not). ONEDNN_VERBOSE
(`make bench`'s overhead column) counts only oneDNN primitives as kernels, so phalanx's own
loops land outside there.

Release builds strip the extension (pybind11 does), which would leave phalanx's loops
unnamed and counted outside: `--build DIR` relinks an unstripped copy of DIR's extension from
its object files (no recompilation) into a temporary directory and profiles that.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# phalanx's own compute loops (symbols of the unstripped extension)
KERNEL_SYMBOLS = re.compile(
    r"piecewise_(forward|backward)|ClPool::|direct_max_pool|max_pool_direct|for_each_element"
    r"|all_finite|softmax_rows|log_softmax|nll_loss_(forward|backward)_loop|batch_norm_plain"
    r"|elementwise_kernel|binary_loop|unary_loop|reduce_loop|avg_pool_plain|strided_loop"
)
DNNL_API = re.compile(r"^(dnnl_|__itt|dnnl::)")


def classify(dso: str, sym: str) -> str:
    """'kernel' or one of the outside categories for a sample in `dso` at `sym`."""
    if dso.startswith("[JIT]"):
        return "kernel"
    if dso.startswith("libdnnl"):
        return "dnnl api" if DNNL_API.search(sym) else "kernel"
    if dso.startswith("_C."):
        return "kernel" if KERNEL_SYMBOLS.search(sym) else "extension (bindings, autograd, glue)"
    if dso.startswith("libpython"):
        return "python"
    if dso.startswith("libc.") or dso.startswith("libm."):
        return "libc (malloc, memcpy)"
    if dso.startswith("libstdc++"):
        return "libstdc++"
    if dso.startswith("[kernel"):
        return "os kernel"
    if dso.startswith("libgomp"):
        return "openmp runtime"
    return "other"


def child(args) -> None:
    sys.path.insert(0, HERE)
    import phalanx
    from models import phalanx_trainer

    phalanx.set_num_threads(args.threads)
    step = phalanx_trainer(args.model, batch=args.batch)
    for _ in range(10):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"STEP_MS median {times[len(times) // 2] * 1e3:.3f} min {times[0] * 1e3:.3f}")


def unstripped_extension(build_dir: str, into: str) -> str:
    """Relinks build_dir's _C module without pybind11's strip; returns the new directory."""
    so = next(f for f in os.listdir(build_dir) if f.startswith("_C") and f.endswith(".so"))
    cmd = subprocess.run(
        ["ninja", "-C", build_dir, "-t", "commands", so], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    link = cmd.removeprefix(": && ").split(" && ")[0]  # drop the strip that follows the link
    link = link.replace(f" -o {so} ", f" -o {os.path.join(into, so)} ")
    subprocess.run(["bash", "-c", f"cd {shlex.quote(build_dir)} && {link}"], check=True)
    return into


def parse_report(text: str) -> tuple[dict[str, float], list[tuple[float, str, str, str]]]:
    """Shares per category, and every (share, category, dso, symbol) row."""
    shares: dict[str, float] = {}
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+(?: tid \d+)?)\s+\[[.k]\]\s+(.*)$", line)
        if m:
            cat = classify(m.group(2), m.group(3))
            shares[cat] = shares.get(cat, 0.0) + float(m.group(1))
            rows.append((float(m.group(1)), cat, m.group(2), m.group(3)))
    return shares, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--build", help="build dir whose extension to relink unstripped")
    ap.add_argument("--show", type=int, default=0, help="list the N largest outside symbols")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if shutil.which("perf") is None:
        sys.exit("overhead_perf: needs `perf` (linux-perf)")
    with tempfile.TemporaryDirectory(prefix="phalanx-overhead-") as tmp:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        py = [sys.executable]
        if args.build:
            ext = unstripped_extension(os.path.abspath(args.build), tmp)
            runner = os.path.join(ROOT, "scripts", "run_with_extension.sh")
            env["PYTHON"] = sys.executable
            py = [runner, ext]
        data = os.path.join(tmp, "perf.data")
        cmd = [
            "perf",
            "record",
            "-q",
            "-e",
            "cpu-clock:u",
            "-F",
            "1999",
            "-o",
            data,
            "--",
            *py,
            __file__,
            "--child",
        ]
        cmd += ["--model", args.model, "--batch", str(args.batch)]
        cmd += ["--threads", str(args.threads), "--steps", str(args.steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        report = subprocess.run(
            ["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    shares, rows = parse_report(report)
    total = sum(shares.values()) or 1.0
    step = next((line for line in out.splitlines() if line.startswith("STEP_MS")), "STEP_MS ?")
    print(f"{args.model} batch {args.batch}, {args.threads} thread(s), {args.steps} steps")
    print(f"step time (wall, ms): {step.removeprefix('STEP_MS ')};  load: {os.getloadavg()}")
    print("| where | share of CPU samples |\n|---|---|")
    for cat, v in sorted(shares.items(), key=lambda kv: (kv[0] != "kernel", -kv[1])):
        print(f"| {cat} | {100 * v / total:.1f}% |")
    print(f"| **outside kernels** | **{100 * (1 - shares.get('kernel', 0.0) / total):.1f}%** |")
    outside = sorted((r for r in rows if r[1] != "kernel"), reverse=True)[: args.show]
    for share, cat, dso, sym in outside:
        print(f"  {100 * share / total:5.2f}%  {cat:12.12}  {dso[:20]:20}  {sym[:110]}")


if __name__ == "__main__":
    main()
