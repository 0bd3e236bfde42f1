"""Many ranks on one machine: `make bench-scale` (138 ranks), tests/python/test_scale_bench.py (16).

    python benchmarks/scale_bench.py                       # 138 ranks, 20 steps
    python benchmarks/scale_bench.py --nproc 16 --steps 3 --json out.json

Starts `phalanx launch --nproc N` on benchmarks/scale_rank.py (one compute thread per rank,
each rank on its own loopback address 127.10.x.y, a small MLP on Fashion-MNIST-shaped random
data, DDP) and reports:
- start-up: from the launch to the last rank's import of phalanx, and to the last rank's
  rendezvous (init_process_group, then the DDP constructor's broadcast of rank 0's weights);
  the rendezvous itself (slowest rank's init_process_group + DDP construction);
- step time: per step, the slowest rank's time (a synchronous step waits for it), median
  over steps; and the median rank's;
- per-rank memory (VmRSS and peak VmHWM at the end) and threads and file descriptors;
- the launcher process that hosts the store: its threads, RSS, CPU time, and the store
  thread's own CPU time (the thread named "phx-store").
Every rank must end with the same parameters (checked) and the launcher must exit 0. With
N ranks on 2 cores the step time measures the machine's time-sharing as much as phalanx:
read it as "it works and this is what it costs", not as a speed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RANK_SCRIPT = os.path.join(HERE, "scale_rank.py")
TICK = os.sysconf("SC_CLK_TCK")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nproc", type=int, default=138)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32, help="samples per rank per step")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--shared-address", action="store_true", help="all ranks on 127.0.0.1")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds for the whole run")
    ap.add_argument("--json", help="write every number here")
    args = ap.parse_args(argv)
    for name in ("nproc", "steps", "batch", "hidden"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(rest.split()[0])
    return out


def cpu_seconds(stat_path: str) -> float:
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def store_thread_cpu(pid: int) -> float | None:
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(os.path.join(task, "comm")) as f:
                if f.read().strip() == "phx-store":
                    return cpu_seconds(os.path.join(task, "stat"))
        except OSError:
            continue
    return None


class Sampler:
    """The launcher's threads, memory and CPU, sampled while it runs."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_threads = 0
        self.peak_rss_kb = 0
        self.cpu = 0.0
        self.store_cpu = None

    def sample(self) -> None:
        try:
            s = proc_status(self.pid)
            self.cpu = cpu_seconds(f"/proc/{self.pid}/stat")
            store = store_thread_cpu(self.pid)
        except (OSError, StopIteration, IndexError):
            return  # exited between two reads
        self.peak_threads = max(self.peak_threads, s.get("Threads", 0))
        self.peak_rss_kb = max(self.peak_rss_kb, s.get("VmRSS", 0))
        if store is not None:
            self.store_cpu = store


def run(args) -> dict:
    out_dir = tempfile.mkdtemp(prefix="phalanx-scale-")
    log_dir = os.path.join(out_dir, "logs")
    # This interpreter's -S: under scripts/run_with_extension.sh the launcher (and through it
    # the ranks) must import the same phalanx as this script, not the editable install's.
    cmd = [
        sys.executable,
        *(["-S"] if sys.flags.no_site else []),
        "-m",
        "phalanx.distributed.launch",
        "--nproc",
        str(args.nproc),
        "--quiet",
        "--log-dir",
        log_dir,
        "--max-time",
        str(args.timeout),
        "--env",
        "OMP_NUM_THREADS=1",
        RANK_SCRIPT,
        "--out",
        out_dir,
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--hidden",
        str(args.hidden),
    ]
    if not args.shared_address:
        cmd.append("--own-address")
    t_launch = time.time()
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(launcher.pid)
    deadline = time.monotonic() + args.timeout + 60
    while launcher.poll() is None and time.monotonic() < deadline:
        sampler.sample()
        time.sleep(0.2)
    if launcher.poll() is None:
        launcher.kill()
    output = launcher.communicate()[0]
    wall = time.time() - t_launch
    ranks = []
    for r in range(args.nproc):
        try:
            with open(os.path.join(out_dir, f"rank{r}.json")) as f:
                ranks.append(json.load(f))
        except FileNotFoundError:
            pass
    if launcher.returncode != 0 or len(ranks) != args.nproc:
        tail = ""
        for path in sorted(glob.glob(os.path.join(log_dir, "*.stderr.log")))[:3]:
            with open(path) as f:
                tail += f"--- {os.path.basename(path)}\n{f.read()[-1500:]}"
        raise SystemExit(
            f"scale_bench: the launcher exited {launcher.returncode} and {len(ranks)} of "
            f"{args.nproc} ranks reported\n{output[-3000:]}\n{tail}"
        )
    return summarize(args, ranks, sampler, t_launch, wall)


def summarize(args, ranks, sampler, t_launch, wall) -> dict:
    checksums = {round(r["checksum"], 3) for r in ranks}
    if len(checksums) != 1:
        raise SystemExit(f"scale_bench: ranks ended with different parameters: {checksums}")
    per_step_slowest = [max(r["steps"][i] for r in ranks) for i in range(args.steps)]
    per_rank_median = [statistics.median(r["steps"]) for r in ranks]
    mb = 1 / 1024
    return {
        "nproc": args.nproc,
        "steps": args.steps,
        "batch_per_rank": args.batch,
        "hidden": args.hidden,
        "own_addresses": not args.shared_address,
        "wall_s": wall,
        "last_import_s": max(r["imported"] for r in ranks) - t_launch,
        "last_rendezvous_s": max(r["ddp"] for r in ranks) - t_launch,
        "rendezvous_s": max(r["ddp"] - r["imported"] for r in ranks),
        # From the last rank's start (its import done) to everyone's rendezvous: what the
        # rendezvous costs once all ranks are there (rendezvous_s includes early ranks
        # waiting for late ones).
        "rendezvous_after_last_start_s": max(r["ddp"] for r in ranks)
        - max(r["imported"] for r in ranks),
        "init_process_group_s": max(r["group"] - r["imported"] for r in ranks),
        "first_step_s": max(r["steps"][0] for r in ranks),
        "step_s_median_slowest_rank": statistics.median(per_step_slowest[1:] or per_step_slowest),
        "step_s_median_rank": statistics.median(per_rank_median),
        "rank_rss_mb_median": statistics.median(r["rss_kb"] for r in ranks) * mb,
        "rank_rss_mb_max": max(r["rss_kb"] for r in ranks) * mb,
        "rank_hwm_mb_max": max(r["hwm_kb"] for r in ranks) * mb,
        "rank_rss_mb_total": sum(r["rss_kb"] for r in ranks) * mb,
        "rank_threads_max": max(r["threads"] for r in ranks),
        "rank_fds_max": max(r["fds"] for r in ranks),
        "launcher_threads_peak": sampler.peak_threads,
        "launcher_rss_mb_peak": sampler.peak_rss_kb * mb,
        "launcher_cpu_s": sampler.cpu,
        "store_thread_cpu_s": sampler.store_cpu,
        "final_loss_rank0": ranks[0]["loss"],
        "load_average": os.getloadavg(),
    }


def report(s: dict) -> str:
    lines = [
        f"{s['nproc']} ranks, {s['steps']} DDP steps, MLP 784-{s['hidden']}-10, "
        f"batch {s['batch_per_rank']}/rank, "
        + ("one loopback address per rank" if s["own_addresses"] else "all on 127.0.0.1"),
        f"  launch -> last rank imported phalanx   {s['last_import_s']:8.2f} s",
        f"  launch -> last rank rendezvoused       {s['last_rendezvous_s']:8.2f} s",
        f"  rendezvous, slowest rank (init_process_group + DDP broadcast; includes waiting "
        f"for late ranks) {s['rendezvous_s']:.2f} s (init_process_group "
        f"{s['init_process_group_s']:.2f} s)",
        f"  last rank started -> all rendezvoused  {s['rendezvous_after_last_start_s']:8.2f} s",
        f"  first step (slowest rank)              {s['first_step_s']:8.3f} s",
        f"  step, slowest rank, median over steps  {s['step_s_median_slowest_rank']:8.3f} s",
        f"  step, median rank                      {s['step_s_median_rank']:8.3f} s",
        f"  rank RSS median / max / peak (HWM)     {s['rank_rss_mb_median']:.0f} / "
        f"{s['rank_rss_mb_max']:.0f} / {s['rank_hwm_mb_max']:.0f} MiB "
        f"(all ranks: {s['rank_rss_mb_total'] / 1024:.1f} GiB)",
        f"  rank threads / fds (max)               {s['rank_threads_max']} / {s['rank_fds_max']}",
        f"  launcher (hosts the store): threads {s['launcher_threads_peak']} peak, RSS "
        f"{s['launcher_rss_mb_peak']:.0f} MiB peak, "
        f"CPU {s['launcher_cpu_s']:.2f} s",
        f"  store thread (phx-store) CPU           {s['store_thread_cpu_s'] or 0:8.2f} s",
        f"  wall {s['wall_s']:.1f} s, load average {s['load_average'][0]:.2f}, "
        f"final loss (rank 0) {s['final_loss_rank0']:.3f}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    summary = run(args)
    print(report(summary), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
