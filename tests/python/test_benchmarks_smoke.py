"""Smoke test of the benchmark suite (benchmarks/run.py): it runs and reports; no timing claims."""

import json
import os
import re
import subprocess

import pytest
from _spawn import PYTHON, python_env, scaled

import phalanx

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
        timeout=scaled(120),
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


def test_phone_operating_point_rows_and_measured_peak(tmp_path):
    # issue 17: the per-rank batch of a phone cluster (LeNet-5 at 32), and a percent-of-peak
    # measured on this machine instead of guessed from the ISA
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            *PYTHON,
            os.path.join(BENCH, "run.py"),
            "--quick",
            "--points",
            "phone",
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
        timeout=scaled(120),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Measured fp32 peak" in proc.stdout
    res = json.loads(out_json.read_text())
    (m,) = res["models"]
    assert m["batch"] == 32 and m["phalanx_img_s"] > 0
    assert res["peak"]["gflops"]["1"] > 0 and res["peak"]["isa"]
    assert res["overhead"]["lenet@32"]["batch"] == 32


def test_measured_peak_checks_its_arguments():
    r = phalanx._C._measure_fp32_peak(1, 0.05)
    assert r["gflops"] > 0 and r["isa"] in ("avx512", "avx2", "scalar")
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        phalanx._C._measure_fp32_peak(0, 0.05)
    with pytest.raises(ValueError, match="seconds must be in"):
        phalanx._C._measure_fp32_peak(1, -1.0)
