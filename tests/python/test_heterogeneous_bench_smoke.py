"""Smoke test of benchmarks/heterogeneous_bench.py on 2 emulated phones, tiny model and
batch, 3 steps, the balanced and the torch rows (equal and run_time differ from balanced
only in DDP's arguments, and each job costs ~15 s of interpreter starts here): it runs end
to end and reports its table and JSON; no timing claims. Needs root, netns and cgroups
(skips naming what is missing); the torch row needs torch."""

import json
import os

import pytest
from _spawn import run_python

from phalanx.distributed.emulate import missing_capability

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks", "heterogeneous_bench.py")
MISSING = missing_capability(memory=False)
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no emulated phones: {MISSING}")
pytest.importorskip("torch")


def test_heterogeneous_bench_reports_every_mode_beside_the_ideal(tmp_path):
    out_json = tmp_path / "hetero.json"
    proc = run_python(
        [BENCH, "--cpu", "1,0.5", "--link", "1gbit,100mbit", "--steps", "3"]
        + ["--batch", "8", "--width", "4", "--modes", "balance,torch", "--json", str(out_json)],
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = proc.stdout
    assert "| mode       |  step (s) |  x ideal | final shares | cores got |" in report, report
    for mode in ("ideal", "balance", "torch"):
        assert f"| {mode:10} |" in report, (mode, report)
    res = json.loads(out_json.read_text())
    assert [r["mode"] for r in res["results"]] == ["balance", "torch"]
    for r in res["results"]:
        assert "failed" not in r, r
        assert len(r["records"]) == 3 and sum(r["shares"]) == 8, r
        assert len(r["cores"]) == 2 and all(c > 0 for c in r["cores"]), r
    assert res["ideal"] > 0
