"""Smoke test of benchmarks/dist_bench.py: loopback only, tiny sizes and batch, one round. It
runs end to end and reports its tables and JSON; no timing claims."""

import json
import os

import pytest
from _spawn import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")

pytest.importorskip("torch")


def test_dist_bench_reports_all_reduce_and_ddp_tables(tmp_path):
    out_json = tmp_path / "dist.json"
    proc = run_python(
        [os.path.join(BENCH, "dist_bench.py"), "--links", "loopback", "--sizes", "4,4K"]
        + ["--models", "cnn", "--cnn-batch", "2", "--rounds", "1", "--iters", "1"]
        + ["--json", str(out_json)],
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = proc.stdout
    assert "#### All-reduce (float32 SUM), link: loopback" in report, report
    assert "| size | phalanx us | torch us | phalanx MB/s | torch MB/s | speed-up |" in report
    assert "| 4 KB |" in report and "| 4 B |" in report
    row = next(ln for ln in report.splitlines() if ln.startswith("| cnn b2 32px"))
    assert "| loopback | phalanx |" in row, row

    res = json.loads(out_json.read_text())
    (link,) = res["links"]
    assert [r["bytes"] for r in link["all_reduce"]] == [4, 4096]
    assert all(r["phalanx"] > 0 and r["torch"] > 0 for r in link["all_reduce"])
    (ddp,) = link["ddp"]
    assert ddp["params"] > 1_000_000
    for fw in ("phalanx", "torch"):
        assert all(ddp[fw][k] > 0 for k in ("compute", "comm", "ddp")), ddp


def test_dist_bench_rejects_unknown_link_and_tiny_size(monkeypatch, capsys):
    monkeypatch.syspath_prepend(BENCH)
    import dist_bench

    assert dist_bench.parse_size("64M") == 64 << 20 and dist_bench.parse_size("4KB") == 4096
    for argv, msg in [(["--links", "wifi"], "unknown link 'wifi'"), (["--sizes", "2"], "4 bytes")]:
        with pytest.raises(SystemExit):
            dist_bench.parse_args(argv)
        assert msg in capsys.readouterr().err
