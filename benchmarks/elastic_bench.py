"""Elastic training: how long a lost rank or a joining one holds the job up.

    make bench-elastic
    python benchmarks/elastic_bench.py --where local --repeat 3
    python benchmarks/elastic_bench.py --where phones --link 100mbit     # root: emulated phones

Three ranks train a small model (tests/python/launch_helpers/elastic_train_rank.py, one
commit every 2 steps, --step-sleep seconds per step so a step lasts about as long as a small
model's step on a phone) under `phalanx launch --elastic`, on local processes or on emulated
phones (phalanx.distributed.emulate: network namespaces with tbf links). Scenarios:

    kill    rank 2 SIGKILLs itself: seconds from its death to the survivors' first completed
            step (detection, re-rendezvous, restore, sync, and the redone step)
    stop    rank 2 SIGSTOPs itself (frozen, connections open): the same, and that minus the
            heartbeat timeout (detection by silence)
    rejoin  rank 2 dies and the launcher starts a replacement (--max-restarts 1): the stall
            the running ranks see when it joins at a commit (the longest gap between two
            steps around the join minus the median step)

Targets (issue 15): kill <= 5 s, stop <= 5 s plus the detection timeout, rejoin stall <= 5 s.
Prints a table and, with --json, one JSON record per run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RANK = os.path.join(
    os.path.dirname(HERE), "tests", "python", "launch_helpers", "elastic_train_rank.py"
)
STEP = re.compile(r"member (\d+) rank \d+/(\d+) gen (\d+) step (\d+) loss \S+ t ([\d.]+)")
EVENT = re.compile(r"member (\d+): (kill|stop) at step \d+ t ([\d.]+)")


def parse(text: str):
    steps = [(int(m), int(w), int(g), int(s), float(t)) for m, w, g, s, t in STEP.findall(text)]
    events = [(int(m), how, float(t)) for m, how, t in EVENT.findall(text)]
    return steps, events


def recovery(steps, events) -> float:
    """Seconds from the event to the first step completed in a later generation."""
    _, _, when = events[0]
    after = [t for m, w, g, s, t in steps if g >= 1 and t > when]
    return min(after) - when


def join_stall(steps, member: int = 0) -> float:
    """Rank `member`'s longest gap between steps across a generation change that admitted a
    joiner (the first generation with more ranks than the one before), minus its median gap."""
    mine = sorted((t, g, w) for m, w, g, s, t in steps if m == member)
    gaps = [b[0] - a[0] for a, b in zip(mine, mine[1:])]
    grow = [b[0] - a[0] for a, b in zip(mine, mine[1:]) if b[1] > a[1] and b[2] > a[2]]
    if not grow:
        raise RuntimeError("no join seen in the output")
    return max(grow) - statistics.median(gaps)


def run_once(args, scenario: str, out: str) -> dict:
    train = [out, "--steps", str(args.steps), "--step-sleep", str(args.step_sleep)]
    how = "stop" if scenario == "stop" else "kill"
    train += ["--event", f"{how}:2:{args.event_step}"]
    launch = ["--elastic", "--env", f"PHALANX_HEARTBEAT_TIMEOUT={args.heartbeat_timeout}"]
    launch += ["--env", f"PHALANX_HEARTBEAT_INTERVAL={args.heartbeat_interval}"]
    if scenario == "rejoin":
        launch += ["--max-restarts", "1", "--restart-delay", "0"]
    if args.where == "phones":
        from phalanx.distributed.emulate import PhoneCluster

        with PhoneCluster(3, link=args.link) as c:
            job = c.launch(RANK, train, launch_args=launch)
            code = job.wait(timeout=args.timeout)
            text = job.stdout() + job.stderr()
    else:
        # This interpreter and its flags (-S under scripts/run_with_extension.sh), so the
        # launcher and ranks import the phalanx this benchmark does.
        python = [sys.executable, *(["-S"] if sys.flags.no_site else [])]
        cmd = [*python, "-m", "phalanx.distributed.launch", "--nproc", "3", *launch]
        done = subprocess.run(
            [*cmd, RANK, *train], capture_output=True, text=True, timeout=args.timeout
        )
        code, text = done.returncode, done.stdout + done.stderr
    if code != 0:
        raise RuntimeError(f"{scenario}: the job failed ({code}):\n{text[-4000:]}")
    steps, events = parse(text)
    record = {"scenario": scenario, "where": args.where}
    if scenario == "rejoin":
        record["stall_s"] = round(join_stall(steps), 3)
    else:
        record["recovery_s"] = round(recovery(steps, events), 3)
        if scenario == "stop":
            record["minus_detection_s"] = round(record["recovery_s"] - args.heartbeat_timeout, 3)
    normal = [b[4] - a[4] for a, b in zip(steps, steps[1:]) if a[0] == b[0] == 0 and a[2] == b[2]]
    record["step_s"] = round(statistics.median(normal), 4) if normal else None
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--where", choices=("local", "phones", "auto"), default="auto")
    p.add_argument("--scenarios", default="kill,stop,rejoin")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--event-step", type=int, default=9)
    p.add_argument("--step-sleep", type=float, default=0.1)
    p.add_argument("--heartbeat-interval", type=float, default=1.0)
    p.add_argument("--heartbeat-timeout", type=float, default=3.0)
    p.add_argument("--link", default="100mbit")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.where == "auto":
        from phalanx.distributed.emulate import missing_capability

        missing = missing_capability(memory=False)
        args.where = "local" if missing else "phones"
        if missing:
            print(f"no emulated phones ({missing}): local ranks instead", file=sys.stderr)
    load = os.getloadavg()
    print(
        f"elastic_bench: 3 ranks on {args.where}"
        + (f" ({args.link} links)" if args.where == "phones" else "")
        + f", heartbeat {args.heartbeat_interval:g} s / timeout {args.heartbeat_timeout:g} s, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
    )
    rows = []
    for scenario in args.scenarios.split(","):
        for _ in range(args.repeat):
            out = tempfile.mkdtemp(prefix="elastic_bench.")
            try:
                record = run_once(args, scenario, out)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            rows.append(record)
            if args.json:
                print(json.dumps(record), flush=True)
    print(f"{'scenario':<8} {'median s':>9} {'max s':>7}  what")
    what = {
        "kill": "SIGKILL -> survivors' first completed step",
        "stop": "SIGSTOP -> survivors' first completed step (incl. detection)",
        "rejoin": "stall of the running ranks when the replacement joins",
    }
    for scenario in args.scenarios.split(","):
        key = "stall_s" if scenario == "rejoin" else "recovery_s"
        vals = [r[key] for r in rows if r["scenario"] == scenario]
        print(f"{scenario:<8} {statistics.median(vals):>9.2f} {max(vals):>7.2f}  {what[scenario]}")
        if scenario == "stop":
            d = [r["minus_detection_s"] for r in rows if r["scenario"] == "stop"]
            print(f"{'':<8} {statistics.median(d):>9.2f} {max(d):>7.2f}  minus the timeout")
    steps = [r["step_s"] for r in rows if r["step_s"]]
    load = os.getloadavg()
    print(
        f"median step {statistics.median(steps):.3f} s; load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f} at end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
