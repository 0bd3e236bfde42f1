"""`make bench-scale`'s entry point with 16 ranks (138 in the benchmark): one launch, a small
MLP under DDP, every rank on its own loopback address; all ranks end with the same parameters
(scale_bench checks it and exits non-zero otherwise) and the numbers are reported."""

import json
import os

from _spawn import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks", "scale_bench.py")


def test_16_ranks_train_with_ddp_and_report_rendezvous_steps_memory_and_store(tmp_path):
    out = tmp_path / "scale.json"
    proc = run_python(
        [BENCH, "--nproc", "16", "--steps", "3", "--timeout", "240", "--json", str(out)],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "16 ranks, 3 DDP steps" in proc.stdout, proc.stdout
    s = json.loads(out.read_text())
    assert s["nproc"] == 16 and s["own_addresses"]
    assert 0 < s["rendezvous_s"] < s["last_rendezvous_s"]
    assert 0 < s["rendezvous_after_last_start_s"] < s["last_rendezvous_s"]
    assert s["step_s_median_slowest_rank"] > 0 and s["rank_rss_mb_max"] > 0
    # The store is one named thread in the launcher, whose CPU time could be read.
    assert s["store_thread_cpu_s"] is not None
    # The launcher: main thread, the store's, two output pumps per rank, and a few more.
    assert s["launcher_threads_peak"] <= 2 * 16 + 8, s["launcher_threads_peak"]


def test_a_bad_rank_count_is_refused_naming_it():
    proc = run_python([BENCH, "--nproc", "0"], timeout=60)
    assert proc.returncode == 2 and "--nproc must be >= 1, got 0" in proc.stderr, proc.stderr
