"""Where one phalanx training step spends its CPU time: inside compute kernels or outside them
(Python, bindings, autograd, allocation), measured with `perf record` (issue 17).

    python benchmarks/overhead_perf.py --model lenet --batch 32 --threads 1 [--seconds 15]

A child process trains (forward + cross_entropy, backward, SGD step with momentum, zero_grad:
benchmarks/models.py's step without its clocks) under `perf record`, which samples the call
stack (DWARF unwinding) from the fourth second on (after imports and warm-up), for
`--seconds` more (or `--steps` steps in all). A fixed step count got too short once steps got
faster: 1500 LeNet-5 b32 steps ended soon after the fourth second and left a few hundred
samples, which read 20.8% outside kernels where 6000 steps read 16-17%.

Each sample is classified by its leaf symbol (`classify`), except that
anything called from inside one of phalanx's compute loops (a memset zero-filling a
gradient) counts as that loop's (`classify_stack`):

- kernel: oneDNN's generated code (perf's `[JIT]`), libdnnl's compiled code other than its
  API entry points (`dnnl_*`, the ITT hooks), and phalanx's own compute loops in the
  extension (KERNEL_SYMBOLS: ReLU, pooling, the optimizers' element loops, ...);
- outside: everything else: the Python interpreter, pybind11, autograd, primitive and
  tensor bookkeeping in the extension, malloc/free, libstdc++, the OS kernel.

Samples count the process's user-space CPU time (`cpu-clock:u`: the OS kernel's share on a
shared machine is mostly other processes' interrupts, network softirqs, handled on our time),
so the share is much less sensitive to other load than a wall-clock difference would be (the
step times printed next to it are not). ONEDNN_VERBOSE (`make bench`'s overhead column)
counts only oneDNN primitives as kernels, so phalanx's own loops land outside there.

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

START = time.perf_counter()  # close to the process's start: perf's delay counts from exec
PERF_DELAY_S = 4.0

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# phalanx's own compute loops (symbols of the unstripped extension)
KERNEL_SYMBOLS = re.compile(
    r"piecewise_(forward|backward)|ClPool::|direct_max_pool|max_pool_direct|for_each_element"
    r"|all_finite|softmax_rows|log_softmax|nll_loss_(forward|backward)_loop|batch_norm_plain"
    r"|elementwise_kernel|binary_loop|unary_loop|reduce_loop|avg_pool_plain|strided_loop"
    # batch norm's own loops (ops/batch_norm_plain.h, batch_norm_blocked.h) and average
    # pooling's windows: uncounted until 2026-12-06, when ResNet-50 read 14% "outside" of
    # which 12.6 points were these loops
    r"|bn_plain::|bn_blocked::|window_avg_"
    # the optimizers' element loops since they write the weights' twin copies alongside
    # (optim::update_parameter, dnnl_util::WeightTwins::write), in place of for_each_element
    r"|update_parameter|WeightTwins::write"
)
DNNL_API = re.compile(r"^(dnnl_|__itt|dnnl::)")


def classify(dso: str, sym: str) -> str:
    """'kernel' or one of the outside categories for a sample whose leaf is `sym` in `dso`
    (a file name, or perf's JIT map)."""
    dso = os.path.basename(dso)
    if dso.startswith("[JIT]") or (dso.startswith("perf-") and dso.endswith(".map")):
        return "kernel"
    if dso.startswith("libdnnl"):
        return "dnnl api" if DNNL_API.search(sym) else "kernel"
    if dso.startswith("_C."):
        return "kernel" if KERNEL_SYMBOLS.search(sym) else "extension (bindings, autograd, glue)"
    if dso.startswith("libpython") or dso.startswith("python"):
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


FRAME = re.compile(r"^\s*[0-9a-f]+ (.*) \((.*)\)$")


def classify_stack(frames: list[tuple[str, str]]) -> str:
    """A sample's category from its call stack, leaf first: a libc memset or a malloc called
    from inside one of phalanx's compute loops (the zero fill of a max-pool backward) is that
    kernel's time; everything else goes by its leaf."""
    sym, dso = frames[0]
    leaf = classify(dso, sym)
    if leaf != "kernel" and any(KERNEL_SYMBOLS.search(s) for s, _ in frames[1:]):
        return "kernel"
    return leaf


def parse_script(text: str) -> tuple[dict[str, float], list[tuple[float, str, str, str]]]:
    """Shares (in percent) per category from `perf script` output, and the outside leaves as
    (share, category, dso, symbol) rows, largest first."""
    counts: dict[str, int] = {}
    leaves: dict[tuple[str, str, str], int] = {}
    total = 0
    for sample in text.split("\n\n"):
        frames = []
        for line in sample.splitlines():
            m = FRAME.match(line)
            if m:
                frames.append((m.group(1), m.group(2)))
        if not frames:
            continue
        # perf lists an inlined function as its own frame: it lives in the next real one's file
        for i in range(len(frames) - 2, -1, -1):
            if frames[i][1] == "inlined":
                frames[i] = (frames[i][0], frames[i + 1][1])
        total += 1
        cat = classify_stack(frames)
        counts[cat] = counts.get(cat, 0) + 1
        if cat != "kernel":
            key = (cat, os.path.basename(frames[0][1]), frames[0][0])
            leaves[key] = leaves.get(key, 0) + 1
    scale = 100.0 / max(total, 1)
    rows = sorted(((n * scale, *k) for k, n in leaves.items()), reverse=True)
    return {k: n * scale for k, n in counts.items()}, rows


def child(args) -> None:
    """The training step of benchmarks/models.py without its per-phase clocks and counters."""
    sys.path.insert(0, HERE)
    import phalanx
    import phalanx.nn.functional as F
    from models import LR, MOMENTUM, batch_arrays, build_phalanx

    phalanx.set_num_threads(args.threads)
    model = build_phalanx(args.model).train()
    opt = phalanx.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xa, ya = batch_arrays(args.model, args.batch)
    x, y = phalanx.from_numpy(xa), phalanx.from_numpy(ya)

    def step() -> None:
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()

    for _ in range(10):
        step()
    times = []
    # perf samples from PERF_DELAY_S after the process started, a little before this point
    sampled_from = START + PERF_DELAY_S
    until = sampled_from + args.seconds
    # (at least one sampled step: ten warm-up steps of a large model can outlast the window)
    while (len(times) < args.steps) if args.steps else (time.perf_counter() < until or not times):
        t0 = time.perf_counter()
        step()
        if t0 >= sampled_from:  # the steps perf saw
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=15.0, help="sampled seconds of training")
    ap.add_argument("--steps", type=int, default=0, help="this many sampled steps instead")
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
            "-D",
            str(int(PERF_DELAY_S * 1000)),
            "-e",
            "cpu-clock:u",
            "-F",
            "999",
            "--call-graph",
            "dwarf,8192",
            "-o",
            data,
            "--",
            *py,
            __file__,
            "--child",
        ]
        cmd += ["--model", args.model, "--batch", str(args.batch)]
        cmd += ["--threads", str(args.threads), "--steps", str(args.steps)]
        cmd += ["--seconds", str(args.seconds)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        script = subprocess.run(
            ["perf", "script", "-i", data, "-F", "ip,sym,dso"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    shares, rows = parse_script(script)
    total = sum(shares.values()) or 1.0
    step = next((line for line in out.splitlines() if line.startswith("STEP_MS")), "STEP_MS ?")
    length = f"{args.steps} steps" if args.steps else f"{args.seconds:g} s sampled"
    print(f"{args.model} batch {args.batch}, {args.threads} thread(s), {length}")
    print(f"step time (wall, ms): {step.removeprefix('STEP_MS ')};  load: {os.getloadavg()}")
    print("| where | share of CPU samples |\n|---|---|")
    for cat, v in sorted(shares.items(), key=lambda kv: (kv[0] != "kernel", -kv[1])):
        print(f"| {cat} | {100 * v / total:.1f}% |")
    print(f"| **outside kernels** | **{100 * (1 - shares.get('kernel', 0.0) / total):.1f}%** |")
    for share, cat, dso, sym in rows[: args.show]:
        print(f"  {100 * share / total:5.2f}%  {cat:12.12}  {dso[:20]:20}  {sym[:110]}")


if __name__ == "__main__":
    main()
