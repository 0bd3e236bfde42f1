"""Flat vs hierarchical all-reduce on an emulated rack of two switches (root, netns).

    python benchmarks/hierarchical_bench.py                    # 8 phones, 2 switches x 4
    python benchmarks/hierarchical_bench.py --uplinks 100mbit --json out.json

Phones have 1 Gbit/s ports (--port); the two switches hang off a core bridge through
uplinks shaped to each rate of --uplinks ("none": unshaped, as fast as the machine). Each
phone all-reduces float32 tensors of --sizes bytes flat (phalanx's automatic algorithm) and
hierarchically (phalanx.distributed.algorithms.hierarchical), rank 0's median over --reps
is reported next to phalanx.perfmodel's prediction for both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from phalanx import perfmodel as pm
from phalanx.distributed.emulate import PhoneCluster

HERE = os.path.dirname(os.path.abspath(__file__))
RANK_SCRIPT = os.path.join(HERE, "hierarchical_rank.py")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--phones", type=int, default=8)
    ap.add_argument("--switches", type=int, default=2)
    ap.add_argument("--port", default="1gbit")
    ap.add_argument("--uplinks", default="100mbit,none")
    ap.add_argument(
        "--orders",
        default="by-switch,interleaved",
        help="rank order: by-switch (ranks 0..k-1 on switch 0, ...) or interleaved (i mod g)",
    )
    ap.add_argument("--sizes", default="65536,4194304")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--alpha-us", type=float, default=50.0, help="model: latency per round")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.phones % args.switches:
        ap.error(f"--phones {args.phones} must be a multiple of --switches {args.switches}")
    return args


def run(args, uplink: str | None, order: str) -> dict:
    k = args.phones // args.switches
    if order == "by-switch":
        switches = [i // k for i in range(args.phones)]
    else:
        switches = [i % args.switches for i in range(args.phones)]
    out = tempfile.mkdtemp(prefix="phalanx-hier-")
    os.chmod(out, 0o777)
    with PhoneCluster(args.phones, link=args.port, switches=switches, uplink=uplink) as c:
        job = c.launch(
            RANK_SCRIPT,
            ["--out", out, "--sizes", args.sizes, "--reps", str(args.reps)],
            launch_args=["--max-time", "600"],
        )
        code = job.wait(timeout=660)
        if code != 0:
            raise SystemExit(
                f"uplink {uplink}: exit {code}\n{job.stdout()[-2000:]}\n{job.stderr()[-3000:]}"
            )
    with open(os.path.join(out, "rank0.json")) as f:
        return json.load(f)


def main(argv=None) -> int:
    args = parse_args(argv)
    k = args.phones // args.switches
    port = pm.Link.from_rate(args.port, args.alpha_us * 1e-6, efficiency=0.94)
    results = []
    print(
        f"{args.phones} phones, {args.switches} switches x {k}, ports {args.port}; "
        "all-reduce ms, rank 0 median (model in parentheses)\n"
    )
    print("| rank order | uplink | bytes | flat (auto) | hierarchical | hierarchical / flat |")
    print("|---|---|---:|---:|---:|---:|")
    for order in [o.strip() for o in args.orders.split(",")]:
        for uplink in [u.strip() for u in args.uplinks.split(",")]:
            up_rate = None if uplink in ("none", "") else uplink
            res = run(args, up_rate, order)
            # Unshaped: the bridges inside one machine, far faster than any port.
            up = (
                pm.Link(args.alpha_us * 1e-6, 0.0)
                if up_rate is None
                else pm.Link.from_rate(up_rate, args.alpha_us * 1e-6, 0.94)
            )
            for row in res["rows"]:
                n = row["bytes"]
                flat_model = pm.allreduce_time(
                    n,
                    args.phones,
                    port,
                    "auto",
                    group_size=k,
                    uplink=up,
                    ranks_by_switch=order == "by-switch",
                )
                hier_model = pm.allreduce_time(
                    n, args.phones, port, "hierarchical", group_size=k, uplink=up
                )
                row.update(
                    order=order,
                    uplink=uplink,
                    flat_model_s=flat_model,
                    hierarchical_model_s=hier_model,
                )
                results.append(row)
                print(
                    f"| {order} | {uplink} | {n} | "
                    f"{row['flat_s'] * 1e3:.1f} ({flat_model * 1e3:.1f}) | "
                    f"{row['hierarchical_s'] * 1e3:.1f} ({hier_model * 1e3:.1f}) | "
                    f"{row['hierarchical_s'] / row['flat_s']:.2f} "
                    f"({hier_model / flat_model:.2f}) |"
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": results, "load": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
