"""Validates phalanx.perfmodel against DDP runs on the emulated phone cluster (root, netns).

    python benchmarks/perfmodel_validate.py                       # 1gbit and 100mbit, 2/4/8
    python benchmarks/perfmodel_validate.py --links 100mbit --ranks 2,4 --json out.json
    python benchmarks/perfmodel_validate.py --local --ranks 2     # no netns: a smoke run

For each link rate and rank count, an emulated cluster (phalanx.distributed.emulate, one
network namespace per rank behind a tbf-shaped port) runs benchmarks/perfmodel_rank.py: an
all-reduce sweep, the compute of an MLP (forward, backward, optimizer; no DDP) and DDP steps.

Calibration: the link's alpha and beta are fitted (perfmodel.fit_link) from the 2-rank
all-reduce sweep on that link only; compute is the slowest rank's measured forward, backward
and optimizer in the run being predicted (per-rank compute is an input of the model). The
model then predicts the all-reduce times at 4 and 8 ranks and every run's DDP step time,
which are compared with the measurements (error = predicted / measured - 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

from phalanx import perfmodel as pm  # noqa: E402

RANK_SCRIPT = os.path.join(HERE, "perfmodel_rank.py")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--links", default="1gbit,100mbit")
    ap.add_argument("--ranks", default="2,4,8")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each configuration")
    ap.add_argument("--local", action="store_true", help="plain local ranks, no emulated links")
    ap.add_argument("--json", help="write the measurements and predictions here")
    ap.add_argument("--from-json", help="predict the measurements stored by an earlier --json")
    return ap.parse_args(argv)


def rank_args(args, out):
    return [
        "--out",
        out,
        "--hidden",
        str(args.hidden),
        "--batch",
        str(args.batch),
        "--steps",
        str(args.steps),
    ]


def read_ranks(out: str, n: int) -> list[dict]:
    ranks = []
    for r in range(n):
        with open(os.path.join(out, f"rank{r}.json")) as f:
            ranks.append(json.load(f))
    return ranks


def run_one(args, link: str | None, n: int) -> list[dict]:
    out = tempfile.mkdtemp(prefix="phalanx-perfmodel-")
    os.chmod(out, 0o777)
    if args.local:
        cmd = [sys.executable, *(["-S"] if sys.flags.no_site else []), "-m"]
        cmd += ["phalanx.distributed.launch", "--nproc", str(n), "--quiet", "--max-time", "900"]
        proc = subprocess.run(cmd + [RANK_SCRIPT, *rank_args(args, out)], capture_output=True)
        if proc.returncode:
            raise SystemExit(f"local run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return read_ranks(out, n)
    from phalanx.distributed.emulate import PhoneCluster

    with PhoneCluster(n, link=link) as c:
        job = c.launch(RANK_SCRIPT, rank_args(args, out), launch_args=["--max-time", "900"])
        code = job.wait(timeout=960)
        if code != 0:
            raise SystemExit(
                f"{n} ranks at {link}: launcher exited {code}\n{job.stdout()[-2000:]}\n"
                f"{job.stderr()[-3000:]}"
            )
    return read_ranks(out, n)


def combine(rounds: list[list[dict]]) -> dict:
    """One configuration's measurements over rounds: per round the slowest rank's compute
    (a synchronous step waits for it) and DDP step, rank 0's all-reduce times; the median
    over rounds of each (the machine is shared: a round may be disturbed)."""
    if rounds and isinstance(rounds[0], dict):  # one round, stored without the round level
        rounds = [rounds]
    slowest = [max(ranks, key=lambda r: r["compute_s"]) for ranks in rounds]
    out = {
        k: statistics.median(s[k] for s in slowest)
        for k in ("forward_s", "backward_s", "optimizer_s", "compute_s")
    }
    out["ddp_step_s"] = statistics.median(max(r["ddp_step_s"] for r in rs) for rs in rounds)
    out["allreduce"] = {
        b: statistics.median(rs[0]["allreduce"][b] for rs in rounds)
        for b in rounds[0][0]["allreduce"]
    }
    out["param_bytes"] = rounds[0][0]["param_bytes"]
    out["batch"] = rounds[0][0]["batch"]
    out["rounds"] = len(rounds)
    return out


def profile_of(m: dict) -> pm.ModelProfile:
    return pm.ModelProfile.uniform(
        "mlp",
        param_bytes=m["param_bytes"],
        forward_s=m["forward_s"],
        backward_s=m["backward_s"],
        optimizer_s=m["optimizer_s"],
        batch=m["batch"],
    )


def cpu_per_byte(prof: pm.ModelProfile, world: int, link: pm.Link, measured: float) -> float:
    """The host's work per gradient byte that makes the model meet a measured DDP step."""
    lo, hi = 0.0, 1e-6
    if pm.step_time(prof, world, link).step_s >= measured:
        return 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if pm.step_time(prof, world, link, cpu_s_per_byte=mid).step_s < measured:
            lo = mid
        else:
            hi = mid
    return lo


def predict(raw: dict) -> dict:
    """Fits each link on its 2-rank runs and predicts every run (see the module doc)."""
    results = {"links": []}
    for link_name, runs in raw.items():
        runs = {int(n): combine(rs) for n, rs in runs.items()}
        fitted = pm.fit_link([(int(b), t) for b, t in runs[2]["allreduce"].items()], world=2)
        prof2 = profile_of(runs[2])
        ddp2 = runs[2]["ddp_step_s"]
        gamma = cpu_per_byte(prof2, 2, fitted, ddp2)
        entry = {
            "link": link_name,
            "alpha_us": fitted.alpha_s * 1e6,
            "bandwidth_mbit": fitted.bandwidth_mbit,
            "cpu_ns_per_byte_2_ranks": gamma * 1e9,
            "allreduce": [],
            "ddp": [],
        }
        for n in sorted(runs):
            rs = runs[n]
            for b, measured in sorted((int(k), v) for k, v in rs["allreduce"].items()):
                predicted = pm.allreduce_time(b, n, fitted)
                entry["allreduce"].append(
                    {"ranks": n, "bytes": b, "measured_s": measured, "predicted_s": predicted}
                )
            prof = profile_of(rs)
            # The host work runs on a core shared like the compute: it slows down by as much
            # as the measured compute did from 2 ranks to n (1 on phones: a core each).
            contention = prof.compute_s / prof2.compute_s
            plain = pm.step_time(prof, n, fitted)
            est = pm.step_time(prof, n, fitted, cpu_s_per_byte=gamma * contention)
            measured = rs["ddp_step_s"]
            entry["ddp"].append(
                {
                    "ranks": n,
                    "rounds": rs["rounds"],
                    "param_bytes": prof.param_bytes,
                    "compute_s": prof.compute_s,
                    "comm_s": plain.comm_s,
                    "contention": contention,
                    "measured_s": measured,
                    "predicted_alpha_beta_s": plain.step_s,
                    "predicted_s": est.step_s,
                    "error_alpha_beta": plain.step_s / measured - 1,
                    "error": est.step_s / measured - 1,
                }
            )
        results["links"].append(entry)
    return results


def measure(args) -> dict:
    links = [None] if args.local else [s.strip() for s in args.links.split(",") if s.strip()]
    counts = sorted({int(s) for s in args.ranks.split(",")} | {2})  # 2 ranks calibrate
    raw = {link or "loopback": {n: [] for n in counts} for link in links}
    # Rounds outermost: a spell of load from elsewhere hits every configuration a little,
    # not one configuration a lot.
    for _ in range(args.rounds):
        for link in links:
            for n in counts:
                raw[link or "loopback"][n].append(run_one(args, link, n))
    return raw


def report(res: dict) -> str:
    lines = []
    for e in res["links"]:
        lines.append(
            f"#### {e['link']}: fitted alpha {e['alpha_us']:.0f} us, "
            f"bandwidth {e['bandwidth_mbit']:.0f} Mbit/s (2-rank all-reduce sweep)"
        )
        lines.append("")
        lines.append("| ranks | bytes | all-reduce measured ms | predicted ms | error |")
        lines.append("|---:|---:|---:|---:|---:|")
        for a in e["allreduce"]:
            err = a["predicted_s"] / a["measured_s"] - 1 if a["measured_s"] else 0.0
            lines.append(
                f"| {a['ranks']} | {a['bytes']} | {a['measured_s'] * 1e3:.2f} | "
                f"{a['predicted_s'] * 1e3:.2f} | {err:+.0%} |"
            )
        lines.append("")
        lines.append(
            f"DDP host work calibrated on 2 ranks: {e['cpu_ns_per_byte_2_ranks']:.2f} ns per "
            "gradient byte, scaled by the compute slowdown (contention)"
        )
        lines.append("")
        lines.append(
            "| ranks | compute ms (slowest) | contention | all-reduce ms (model) | DDP step "
            "measured ms | alpha-beta only ms | error | with host work ms | error |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for d in e["ddp"]:
            lines.append(
                f"| {d['ranks']} | {d['compute_s'] * 1e3:.1f} | {d['contention']:.2f} | "
                f"{d['comm_s'] * 1e3:.1f} | {d['measured_s'] * 1e3:.1f} | "
                f"{d['predicted_alpha_beta_s'] * 1e3:.1f} | {d['error_alpha_beta']:+.1%} | "
                f"{d['predicted_s'] * 1e3:.1f} | {d['error']:+.1%} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_json:  # re-predict stored measurements (after a change of the model)
        with open(args.from_json) as f:
            raw = json.load(f)["raw"]
    else:
        raw = measure(args)
    res = predict(raw)
    res["raw"] = raw
    res["load_average"] = os.getloadavg()
    print(report(res), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
