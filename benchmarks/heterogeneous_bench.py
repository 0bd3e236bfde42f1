"""Heterogeneous phones: step time of four ways to split a global batch, on an emulated
cluster of 4 phones (phalanx.distributed.emulate.PhoneCluster; needs root).

    make bench-heterogeneous
    python benchmarks/heterogeneous_bench.py --steps 40 --modes balance,equal
    python benchmarks/heterogeneous_bench.py --cpu 0.6,0.3 --link 1gbit,100mbit --batch 32

Phones (defaults): 0.6, 0.6, 0.3 and 0.15 of a core (1.65 cores: they fit this machine's 2),
links 1 Gbit/s, 1 Gbit/s, 100 Mbit/s, 100 Mbit/s. Modes, each a `phalanx launch` job of
tests/python/cluster_helpers/balance_rank.py (a small CNN on CIFAR-shaped data):

    equal     phalanx DDP, equal shares, weighted by share
    balance   phalanx DDP(balance=sampler): shares from measured speeds
    run_time  phalanx DDP(batch_weighting="run_time"): equal shares, the wimpy-nodes
              paper's weighting by relative run time
    torch     torch.nn.parallel.DistributedDataParallel (gloo), equal batches

Each row is the median step time over the last half of the run (after the balancer has
settled), beside the ideal step time: global batch / sum of the phones' speeds, with the
speeds the balancer measured, and the cores each phone really got (cgroup cpuacct).
Target: balanced within 15% of ideal. The caps are upper bounds: on a loaded machine the
phones get less (and less unequal) than their caps, so run it when nothing else does.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RANK = os.path.join(os.path.dirname(HERE), "tests", "python", "cluster_helpers", "balance_rank.py")


def run_mode(cluster, mode, args) -> dict:
    job_args = ["--mode", mode, "--steps", str(args.steps), "--global-batch", str(args.batch)]
    job_args += ["--width", str(args.width)]
    env = {}
    if mode == "torch":
        port = _free_port()
        job_args += ["--torch-master", f"{cluster.addrs[0]}:{port}"]
        env = {"GLOO_SOCKET_IFNAME": cluster.net.iface, "OMP_NUM_THREADS": "1"}
    used = [cluster.cpu_seconds(i) or 0.0 for i in range(cluster.n)]
    started = time.monotonic()
    job = cluster.launch(RANK, job_args, env=env)
    code = job.wait(timeout=args.timeout)
    wall = time.monotonic() - started
    # What each phone really got: on a busy machine less than its cap, and then the
    # phones are less unequal than their caps say.
    cores = [((cluster.cpu_seconds(i) or 0.0) - used[i]) / wall for i in range(cluster.n)]
    if code != 0:
        sys.stderr.write(f"{mode}: the job failed ({code}):\n{job.stderr()[-3000:]}\n")
        return {"mode": mode, "failed": code}
    records = [
        json.loads(line.split("STEP ", 1)[1])
        for line in job.stdout().splitlines()
        if "STEP {" in line
    ]
    tail = records[len(records) // 2 :]
    out = {
        "mode": mode,
        "step_time": statistics.median(r["time"] for r in tail),
        "shares": tail[-1]["shares"],
        "cores": cores,
        "records": records,
    }
    speeds = [r["speeds"] for r in tail if r.get("speeds") and None not in r["speeds"]]
    if speeds:
        out["speeds"] = [statistics.median(s[i] for s in speeds) for i in range(len(speeds[0]))]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", default="0.6,0.6,0.3,0.15")
    p.add_argument("--link", default="1gbit,1gbit,100mbit,100mbit")
    p.add_argument("--modes", default="equal,balance,run_time,torch")
    p.add_argument("--steps", type=int, default=30)
    # Big enough that computing dominates a step's fixed costs (the all-reduce of the
    # gradients over 100 Mbit/s, Python): ~0.4 s a step on the default phones.
    p.add_argument(
        "--batch",
        type=int,
        default=2048,
        help="global batch (compute-bound: see docs/heterogeneous.md)",
    )
    p.add_argument("--width", type=int, default=32, help="channels of the first convolution")
    p.add_argument("--timeout", type=float, default=900, help="seconds per job")
    p.add_argument("--json", help="write every number here")
    args = p.parse_args(argv)

    from phalanx.distributed.emulate import PhoneCluster, missing_capability

    reason = missing_capability(memory=False)
    if reason:
        print(f"heterogeneous_bench: cannot emulate phones here: {reason}")
        return 3
    phones = len(args.cpu.split(","))
    modes = [m for m in args.modes.split(",") if m]
    if "torch" in modes:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("heterogeneous_bench: torch is not installed; skipping the torch row")
            modes.remove("torch")
    results = []
    with PhoneCluster(phones, cpu=args.cpu, link=args.link) as c:
        print(c.describe())
        for mode in modes:
            t0 = time.monotonic()
            results.append(run_mode(c, mode, args))
            print(f"{mode}: done in {time.monotonic() - t0:.0f} s", flush=True)
        print(c.report())
    speeds = next(
        (r["speeds"] for r in results if r.get("speeds") and r["mode"] == "balance"), None
    )
    speeds = speeds or next((r["speeds"] for r in results if r.get("speeds")), None)
    ideal = args.batch / sum(speeds) if speeds else None
    print()
    print(
        f"global batch {args.batch}, {args.steps} steps, phones cpu {args.cpu}, links {args.link}"
    )
    if speeds:
        print("measured speeds (samples/s): " + ", ".join(f"{s:.1f}" for s in speeds))
    print(f"| {'mode':10} | {'step (s)':>9} | {'x ideal':>8} | final shares | cores got |")
    print(f"|{'-' * 12}|{'-' * 11}|{'-' * 10}|--------------|-----------|")
    if ideal:
        print(f"| {'ideal':10} | {ideal:9.3f} | {1.0:8.2f} | (batch / sum of speeds) | |")
    verdict = None
    for r in results:
        if "failed" in r:
            print(f"| {r['mode']:10} | {'failed':>9} | {'':8} | exit {r['failed']} | |")
            continue
        ratio = r["step_time"] / ideal if ideal else float("nan")
        got = ", ".join(f"{x:.2f}" for x in r["cores"])
        print(f"| {r['mode']:10} | {r['step_time']:9.3f} | {ratio:8.2f} | {r['shares']} | {got} |")
        if r["mode"] == "balance" and ideal:
            verdict = ratio <= 1.15
    if verdict is not None:
        print(f"\nbalanced within 15% of ideal: {'yes' if verdict else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "ideal": ideal, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
