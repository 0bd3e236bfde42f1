"""Smoke tests of the throughput model's two scripts: the validation harness (its local mode:
plain ranks, no emulated links, so no timing claims) and the 138-phone projection."""

import json
import os

from _spawn import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")


def test_validation_harness_measures_and_predicts_locally(tmp_path):
    out = tmp_path / "v.json"
    proc = run_python(
        [os.path.join(BENCH, "perfmodel_validate.py"), "--local", "--ranks", "2"]
        + ["--hidden", "64", "--batch", "8", "--steps", "2", "--json", str(out)],
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "fitted alpha" in proc.stdout and "| 2 |" in proc.stdout, proc.stdout
    res = json.loads(out.read_text())
    (link,) = res["links"]
    (ddp,) = link["ddp"]
    assert ddp["ranks"] == 2 and ddp["measured_s"] > 0 and ddp["predicted_s"] > 0
    # Re-predicting the stored measurements gives the same numbers.
    again = run_python(
        [os.path.join(BENCH, "perfmodel_validate.py"), "--from-json", str(out)], timeout=60
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{ddp['predicted_s'] * 1e3:.1f}" in again.stdout


def test_projection_prints_the_tables_of_docs_scale():
    proc = run_python([os.path.join(BENCH, "cluster_projection.py")], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for title in ("by cluster size", "Where scaling saturates", "30 phones on Wi-Fi", "138 phones"):
        assert title in proc.stdout, proc.stdout
    assert "of a P100" in proc.stdout
    bad = run_python([os.path.join(BENCH, "cluster_projection.py"), "--phone-gflops", "0"])
    assert bad.returncode == 2 and "--phone-gflops must be positive, got 0.0" in bad.stderr
