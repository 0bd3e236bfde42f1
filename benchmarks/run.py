"""phalanx vs PyTorch on CPU: training throughput, memory, per-op times, steady state.

    make bench                                   # everything, threads 1 and 2
    python benchmarks/run.py --quick             # smoke run, under a minute
    python benchmarks/run.py --models resnet18 --threads 2 --iters 5

Prints markdown tables to stdout and writes every number to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _common import child_result, machine_info, run_child, table  # noqa: E402
from models import MODELS, POINTS, overhead_key, point_batch  # noqa: E402

# (warm-up, timed) rounds for models whose steps take milliseconds, when --iters and --warmup
# are not given: 5 rounds of LeNet-5 were mostly the OpenMP pool waking up between the two
# frameworks' turns (b32 at 2 threads read 0.77x by median throughput and 1.45x by the median
# ratio in one run; 40 rounds the same hour: 2.02x).
SMALL_MODEL_ROUNDS = {"lenet": (5, 40)}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default=None, help=f"comma list from: {', '.join(MODELS)}")
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 2")
    ap.add_argument("--iters", type=int, default=None, help="timed rounds per model (default 5)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 1)")
    ap.add_argument("--op-iters", type=int, default=None, help="timed rounds per op (default 15)")
    ap.add_argument("--quick", action="store_true", help="smoke run: lenet, 1 thread, small ops")
    ap.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory probes")
    ap.add_argument("--no-ops", action="store_true", help="skip the per-op table")
    ap.add_argument("--no-overhead", action="store_true", help="skip the ONEDNN_VERBOSE run")
    ap.add_argument(
        "--points",
        default=None,
        help="operating points, comma list from: default (today's batches), phone (the per-rank "
        "batches of a phone cluster: LeNet-5 32, ResNet-18 16, MobileNet-v1 8, ResNet-50 4); "
        "default: both (--quick: default)",
    )
    ap.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"))
    # internal: the fresh-process probes
    ap.add_argument(
        "--child", choices=["memory", "overhead", "worker", "peak"], help=argparse.SUPPRESS
    )
    ap.add_argument("--framework", choices=["phalanx", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.models = args.models or "lenet"
        args.threads = args.threads or [1]
        args.iters = args.iters or 3
        args.warmup = args.warmup if args.warmup is not None else 1
        args.op_iters = args.op_iters or 5
        args.points = args.points or "default"
    args.models = (args.models or ",".join(MODELS)).split(",")
    for m in args.models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    args.threads = args.threads or [1, 2]
    args.rounds_given = args.iters is not None or args.warmup is not None
    args.iters = args.iters or 5
    args.warmup = args.warmup if args.warmup is not None else 1
    args.op_iters = args.op_iters or 15
    args.points = (args.points or ",".join(POINTS)).split(",")
    for pt in args.points:
        if pt not in POINTS:
            ap.error(f"unknown operating point {pt!r}; choose from {', '.join(POINTS)}")
    return args


def run_child_mode(args) -> None:
    import models

    if args.child == "worker":
        run_worker(args.framework, args.threads[0])
        return
    if args.child == "peak":
        from phalanx import _C

        res = _C._measure_fp32_peak(args.threads[0], 1.0)
    elif args.child == "memory":
        name = args.models[0] if args.models != list(MODELS) else None
        res = models.memory_child(args.framework, name, args.threads[0], args.iters)
    else:
        res = models.overhead_child(args.models[0], args.threads[0], args.batch)
    sys.stdout.flush()
    print("RESULT " + json.dumps(res), flush=True)


def run_worker(framework: str, threads: int) -> None:
    """Serves one JSON command per stdin line (see _common.Worker) until stdin closes."""
    import models
    import ops

    if framework == "phalanx":
        import phalanx

        phalanx.set_num_threads(threads)
    else:
        import torch

        torch.set_num_threads(threads)
    state: dict = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "op":
            res = ops.op_command(framework, cmd, state)
        else:
            res = models.worker_command(framework, cmd, state)
        sys.stdout.flush()
        print("RESULT " + json.dumps(res), flush=True)


def _ms(s: float) -> float:
    return s * 1e3


def report(res: dict) -> str:
    m = res["machine"]
    out = [
        "### Machine and command",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores at ~{m['ghz']:.2f} GHz "
        f"(AVX2 FMA: {'yes' if m['avx2_fma'] else 'no'}, "
        f"AVX-512: {'yes' if m.get('avx512f') else 'no'}), shared machine",
        f"- Python {m['python']}, numpy {m['numpy']}, torch {m['torch']}, "
        f"phalanx {m['phalanx']} on oneDNN {m['onednn']}",
        "- Measured fp32 peak (a register-resident "
        f"{res['peak']['isa']} FMA loop, best of 10, in a fresh process at the start): "
        + ", ".join(
            f"{n} thread{'s' if int(n) > 1 else ''} {g:.0f} GFLOP/s"
            for n, g in res["peak"]["gflops"].items()
        ),
        f"- Command: `{res['command']}` ({res['date']}, {res['elapsed_s']:.0f} s)",
        "- Timing: "
        + "; ".join(
            f"{MODELS[n]['title']}: {w} warm-up + {i} timed rounds"
            for n, (w, i) in res.get("rounds", {}).items()
        )
        + ", phalanx and torch alternated each round (order flipped every round); medians. "
        "Speed-up = median over rounds of torch time / phalanx time (> 1: phalanx faster). "
        "Each framework runs in its own worker process (no shared OpenMP runtime); both use "
        "their default OpenMP settings.",
        "",
    ]
    if res["models"]:
        out += ["### Training throughput (forward + cross_entropy, backward, SGD momentum)", ""]
        rows = []
        for r in res["models"]:
            p, t = r["phalanx"], r["torch"]
            rows.append(
                [
                    MODELS[r["model"]]["title"],
                    r["batch"],
                    r["threads"],
                    r["phalanx_img_s"],
                    r["torch_img_s"],
                    f"{r['ratio']:.2f}x",
                    f"{_ms(p['forward']):.0f} / {_ms(p['backward']):.0f} / "
                    f"{_ms(p['optimizer']):.0f}",
                    f"{_ms(t['forward']):.0f} / {_ms(t['backward']):.0f} / "
                    f"{_ms(t['optimizer']):.0f}",
                ]
            )
        out.append(
            table(
                [
                    "model",
                    "batch",
                    "threads",
                    "phalanx img/s",
                    "torch img/s",
                    "speed-up",
                    "phalanx fwd/bwd/opt ms",
                    "torch fwd/bwd/opt ms",
                ],
                rows,
            )
        )
        out.append("")
    if res["memory"]:
        out += [
            "### Peak resident memory (fresh process per framework and model, "
            "minus the import-only baseline)",
            "",
        ]
        rows = [
            [
                MODELS[name]["title"],
                mem["threads"],
                mem["phalanx"]["net_mib"],
                mem["torch"]["net_mib"],
                f"{mem['ratio']:.2f}x",
                mem["phalanx"].get("tensor_peak_bytes", 0) / 2**20,
                f"{mem['phalanx']['baseline_bytes'] / 2**20:.0f} / "
                f"{mem['torch']['baseline_bytes'] / 2**20:.0f}",
            ]
            for name, mem in res["memory"].items()
        ]
        out.append(
            table(
                [
                    "model",
                    "threads",
                    "phalanx MiB",
                    "torch MiB",
                    "phalanx/torch",
                    "phalanx tensors at peak MiB",
                    "import baseline MiB (phalanx / torch)",
                ],
                rows,
            )
        )
        out.append("")
    flops_rows = [r for r in res["models"] if "train_gflop" in r]
    if flops_rows:
        peak = res["peak"]["gflops"]
        out += [
            "### Achieved GFLOP/s (conv + linear, training = 3 x forward 2*MACs)",
            "",
            table(
                [
                    "model",
                    "batch",
                    "threads",
                    "GFLOP/iter",
                    "phalanx GFLOP/s",
                    "torch GFLOP/s",
                    "measured peak",
                    "phalanx % peak",
                    "torch % peak",
                ],
                [
                    [
                        MODELS[r["model"]]["title"],
                        r["batch"],
                        r["threads"],
                        r["train_gflop"],
                        r["phalanx_gflops"],
                        r["torch_gflops"],
                        peak[str(r["threads"])],
                        f"{100 * r['phalanx_gflops'] / peak[str(r['threads'])]:.0f}%",
                        f"{100 * r['torch_gflops'] / peak[str(r['threads'])]:.0f}%",
                    ]
                    for r in flops_rows
                ],
            ),
            "",
        ]
    if res["models"]:
        out += [
            "### phalanx steady state (per timed iteration, medians)",
            "",
        ]
        rows = []
        for r in res["models"]:
            s = r["steady"]
            ov = res["overhead"].get(overhead_key(r["model"], r["batch"]))
            ov_cell = "-"
            if ov is not None and ov["threads"] == r["threads"] and ov["outside_share"] is not None:
                ov_cell = (
                    f"{100 * ov['outside_share']:.0f}% "
                    f"({ov['kernel_ms']:.0f} of {ov['wall_ms']:.0f} ms in kernels)"
                )
            rows.append(
                [
                    MODELS[r["model"]]["title"],
                    r["batch"],
                    r["threads"],
                    int(s["created_first_iter"]),
                    int(s["created_after_first"]),
                    s["reorder_data_per_iter"],
                    s["reorder_weights_per_iter"],
                    s["reorder_to_plain_per_iter"],
                    ov_cell,
                ]
            )
        out.append(
            table(
                [
                    "model",
                    "batch",
                    "threads",
                    "primitives created (1st iter)",
                    "created after 1st",
                    "data reorders/iter",
                    "weight reorders/iter",
                    "to-plain reorders/iter",
                    "time outside oneDNN kernels",
                ],
                rows,
            )
        )
        out += [
            "",
            "Time outside oneDNN kernels: one iteration after 2 warm-ups in a fresh process "
            "with ONEDNN_VERBOSE=1, wall time minus the summed per-primitive exec times.",
            "",
        ]
    if res["ops"]:
        out += ["### Per-op forward / backward (ms, median)", ""]
        rows = [
            [
                r["op"],
                r["threads"],
                r["phalanx_ms"]["forward"],
                r["torch_ms"]["forward"],
                f"{r['speedup_forward']:.2f}x",
                r["phalanx_ms"]["backward"],
                r["torch_ms"]["backward"],
                f"{r['speedup_backward']:.2f}x",
            ]
            for r in res["ops"]
        ]
        out.append(
            table(
                [
                    "op (batch 16 unless said)" if not res["args"]["quick"] else "op",
                    "threads",
                    "phalanx fwd",
                    "torch fwd",
                    "fwd speed-up",
                    "phalanx bwd",
                    "torch bwd",
                    "bwd speed-up",
                ],
                rows,
            )
        )
        out.append("")
    return "\n".join(out)


def measure_peak(threads: list[int]) -> dict:
    """fp32 GFLOP/s of an FMA loop per thread count, each in a fresh process (the parent has
    torch's OpenMP runtime loaded too)."""
    out: dict = {"gflops": {}, "isa": None}
    for n in threads:
        r = child_result(run_child(["--child", "peak", "--threads", str(n)]))
        out["gflops"][str(n)] = r["gflops"]
        out["isa"] = r["isa"]
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child_mode(args)
        return 0

    import models
    import ops

    t_start = time.time()
    res = {
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "args": {k: v for k, v in vars(args).items() if k not in ("child", "framework")},
        "machine": machine_info(),
        "models": [],
        "memory": {},
        "overhead": {},
        "ops": [],
        "rounds": {},
    }
    # First, while nothing else of ours runs: what the cores can do, per thread count.
    res["peak"] = measure_peak(args.threads)
    for name in args.models:
        warmup, iters = (
            SMALL_MODEL_ROUNDS.get(name, (args.warmup, args.iters))
            if not args.rounds_given
            else (args.warmup, args.iters)
        )
        res["rounds"][name] = [warmup, iters]
        for point in args.points:
            batch = point_batch(name, point)
            print(f"[bench] {name} b{batch}: throughput at threads {args.threads}", file=sys.stderr)
            res["models"] += models.bench_model(name, args.threads, iters, warmup, batch)
            if not args.no_overhead:
                print(f"[bench] {name} b{batch}: overhead (ONEDNN_VERBOSE)", file=sys.stderr)
                res["overhead"][overhead_key(name, batch)] = models.bench_overhead(
                    name, min(args.threads), batch
                )
        if not args.no_memory:
            print(f"[bench] {name}: peak memory (fresh processes)", file=sys.stderr)
            res["memory"][name] = models.bench_memory(name, max(args.threads))
    if not args.no_ops:
        print("[bench] per-op table", file=sys.stderr)
        res["ops"] = ops.bench_ops(args.threads, args.op_iters, 2, args.quick)
    res["elapsed_s"] = time.time() - t_start
    text = report(res)
    print(text, flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({**res, "report_markdown": text}, f, indent=1)
        print(f"[bench] wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
