"""Fused-tile training of the Tiny-YOLOv2 backbone on emulated phones (issue 13).

    make bench-spatial                                        # the whole table below
    python benchmarks/spatial_bench.py --sizes 224 --phones 2 --links 1gbit --steps 3
    python benchmarks/spatial_bench.py --quick                # one small point, a smoke run

For each image size (224, 416), number of phones (2, 4) and link (1 Gbit/s, 100 Mbit/s) it
runs examples/tiny_yolo_tiles.py on a PhoneCluster (phalanx.distributed.emulate: one network
namespace per phone behind a tbf-shaped link, as root) in four modes -- one device alone,
pure data parallelism, tiles (the first 8 layers on a 2x1 or 2x2 grid, grouped after layer 4,
the rest data-parallel) and the planner's choice -- and prints one table: measured step time,
the cost model's prediction beside it (profiled on the phones themselves, once before and once
after the measured steps, from the mean of the two; the predictions from each alone are
shown too, for the machine's drift during the run), and per rank the peak memory of the
tiled layers' forward and what they keep for backward, with its ratio to one device's. Then
the cost model's projection to 6 devices (the paper's largest cluster). Every number also
goes to --json.

Each phone is capped at --cores-total / phones of a core (default 1.6 cores in all: 0.8 each
for 2 phones, 0.4 for 4), so phones do not share a core, as the cost model assumes (one
device, one core), and each runs one OpenMP thread (the cluster's default under a cap below
one core). Uncapped, every phone ran OpenMP's default of one thread per core of the machine:
4 phones spinning 8 threads on 2 cores ran the layers up to 10x slower than profiled alone,
and the measurements said nothing about the cost model. Absolute times are this machine's,
not a phone's; run it when nothing else does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE = os.path.join(ROOT, "examples", "tiny_yolo_tiles.py")
sys.path.insert(0, os.path.join(ROOT, "examples"))

MBIT = {"1gbit": 1000.0, "100mbit": 100.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="224,416")
    p.add_argument("--phones", default="2,4")
    p.add_argument("--links", default="1gbit,100mbit")
    p.add_argument("--modes", default="single,dp,tiles,plan")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--json", default=None, help="write every result here")
    p.add_argument("--quick", action="store_true", help="224 px, 2 phones, 1 Gbit/s, 3 steps")
    p.add_argument(
        "--cores-total",
        type=float,
        default=1.6,
        help="CPU cores shared equally by the phones (each capped at total / phones, at most 1)",
    )
    return p.parse_args(argv)


def run_point(cluster, mode, size, phones, link, args):
    grid = "2x1" if phones == 2 else "2x2"
    argv = [
        "--mode", mode, "--image-size", str(size), "--batch", str(args.batch),
        "--width", str(args.width), "--steps", str(args.steps), "--grid", grid,
        "--link-mbit", str(MBIT[link]), "--predict",
    ]  # fmt: skip
    job = cluster.launch(EXAMPLE, argv)
    code = job.wait(timeout=args.timeout)
    out = job.stdout()
    for line in out.splitlines():
        if "{" in line:
            return json.loads(line[line.index("{") :])
    raise RuntimeError(
        f"{mode} {size} {phones} {link}: exit {code}\n{out[-2000:]}\n{job.stderr()[-2000:]}"
    )


def describe(r) -> str:
    if r["mode"] == "single":
        return "1 device"
    if r["mode"] == "dp":
        return f"DP x{r.get('data_parallel', r['ranks'])}"
    g = r["grid"]
    out = r.get("output", "")
    return f"{r['layers']} layers {g[0]}x{g[1]} {r.get('groups')} x{r['data_parallel']} {out}"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.sizes, args.phones, args.links, args.steps = "224", "2", "1gbit", 3
    from phalanx.distributed.emulate import PhoneCluster, missing_capability

    reason = missing_capability(memory=False)
    if reason:
        print(f"spatial_bench: cannot emulate phones here: {reason}")
        return 3
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for phones in [int(p) for p in args.phones.split(",")]:
            for link in args.links.split(","):
                cap = min(1.0, args.cores_total / phones)
                with PhoneCluster(phones, link=link, cpu=cap) as cluster:
                    for mode in args.modes.split(","):
                        r = run_point(cluster, mode, size, phones, link, args)
                        r.update(phones=phones, link=link)
                        results.append(r)
                        print(row(r, results), flush=True)
    print()
    print(table(results))
    print()
    print(projection(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def _single(r, results):
    for s in results:
        if s["mode"] == "single" and s["image_size"] == r["image_size"] and s["link"] == r["link"]:
            if s["phones"] == r["phones"]:
                return s
    return None


def row(r, results) -> str:
    one = _single(r, results)
    kept = max(r["front_kept_bytes"])
    ratio = f"{kept / max(one['front_kept_bytes']):.2f}x" if one and r["mode"] != "dp" else "-"
    pred = r.get("predicted", {}).get("step_s")
    err = f"{(pred - r['step_s']) / r['step_s'] * 100:+.0f}%" if pred and r["step_s"] else "-"
    apart = " / ".join(f"{p['step_s']:.3f}" for p in r.get("predicted_before_after", []))
    return (
        f"| {r['image_size']} | {r['phones']} | {r['link']} | {describe(r)} | "
        f"{r['step_s']:.3f} | {pred:.3f} | {err} | {apart or '-'} | "
        f"{max(r['front_peak_bytes']) / 2**20:.1f} | "
        f"{kept / 2**20:.1f} | {ratio} |"
    )


def table(results) -> str:
    head = (
        "| px | phones | link | configuration | step s | predicted s | error | "
        "predicted before / after s | tiled-layer peak MiB/rank | kept MiB/rank | vs 1 device |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([head] + [row(r, results) for r in results])


def projection(results, args) -> str:
    """The cost model at 6 devices, from the layer times the 4-phone runs profiled."""
    import phalanx
    from phalanx.spatial import plan
    from tiny_yolo_tiles import tiny_yolo_backbone

    lines = ["Projection to 6 devices (cost model, layer times profiled on the phones):"]
    seen = set()
    for r in results:
        key = (r["image_size"], r["link"])
        if r["mode"] != "single" or key in seen or "layer_times" not in r:
            continue
        seen.add(key)
        phalanx.manual_seed(0)
        net = tiny_yolo_backbone(args.width)
        shape = (args.batch, 3, r["image_size"], r["image_size"])
        best = plan(
            net,
            shape,
            6,
            MBIT[r["link"]] * 1e6 / 8,
            latency=r.get("latency_s", 5e-4),
            layer_times=r["layer_times"],
            layer_fixed=r.get("layer_fixed"),
            compute_scale=r.get("compute_scale", 1.0),
            sync=tuple(r.get("sync", (0.0, 0.0))),
            tiled_times=r.get("tiled_times"),
            verbose=False,
        )
        speedup = r["predicted"]["step_s"] / best["predicted_step_s"]
        lines.append(
            f"  {r['image_size']} px, {r['link']}: {best['layers']} layers tiled on "
            f"{best['grid'][0]}x{best['grid'][1]} x{best['data_parallel']} replicas, "
            f"{best['predicted_step_s']:.3f} s/step ({speedup:.1f}x one device), "
            f"{best['predicted_peak_bytes'] / 2**20:.1f} MiB/device"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
