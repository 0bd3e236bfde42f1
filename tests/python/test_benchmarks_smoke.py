"""Smoke test of the benchmark suite (benchmarks/run.py): it runs and reports; no timing claims."""

import json
import os
import re
import subprocess

from _spawn import PYTHON, python_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")


def test_quick_benchmark_reports_tables(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            *PYTHON,
            os.path.join(BENCH, "run.py"),
            "--quick",
            "--models",
            "lenet",
            "--threads",
            "1",
            "--iters",
            "2",
            "--no-memory",
            "--no-ops",
            "--json",
            str(out_json),
        ],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = proc.stdout
    for header in (
        "### Machine and command",
        "### Training throughput",
        "| model | batch | threads | phalanx img/s | torch img/s | speed-up |",
        "### phalanx steady state",
    ):
        assert header in report, f"missing {header!r} in:\n{report}"
    row = next(ln for ln in report.splitlines() if ln.startswith("| LeNet-5"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert int(cells[1]) == 128 and int(cells[2]) == 1
    assert float(cells[3]) > 0 and float(cells[4]) > 0
    assert re.fullmatch(r"\d+\.\d+x", cells[5])

    res = json.loads(out_json.read_text())
    (m,) = res["models"]
    assert m["phalanx_img_s"] > 0 and m["torch_img_s"] > 0
    assert all(m["phalanx"][k] > 0 for k in ("forward", "backward", "optimizer"))
    assert m["steady"]["created_first_iter"] > 0
    assert res["machine"]["cores"] >= 1 and res["machine"]["onednn"]
    ov = res["overhead"]["lenet"]
    assert ov["primitive_execs"] > 0 and ov["kernel_ms"] > 0


def test_per_op_contenders_time_forward_and_backward(monkeypatch):
    # in-process, without the worker processes the full table uses
    monkeypatch.syspath_prepend(BENCH)
    import ops

    for framework in ("phalanx", "torch"):
        for kind, shape, params in list(ops.OPS_QUICK.values())[:3]:
            t = ops._contender(framework, kind, shape, params)()
            assert t["forward"] > 0 and t["backward"] > 0
