"""examples/heterogeneous.py end to end under the launcher (tiny settings, bounded time): a
rank made 4x slower loses samples to the fast one, and the shares are printed as they move."""

from __future__ import annotations

import os
import re

from _spawn import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_balance_moves_shares_away_from_a_slow_rank_and_prints_them():
    proc = run_python(
        ["-m", "phalanx.distributed.launch", "--nproc", "2", "examples/heterogeneous.py",
         "--global-batch", "32", "--steps", "12", "--balance", "--slow", "1:4",
         "--interval", "2", "--width", "0.25", "--print-every", "4"],
        timeout=240, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    shares = [[int(v) for v in m.split(",")] for m in re.findall(r"shares \[([\d, ]+)\] \|", out)]
    assert shares[0] == [16, 16], out
    assert len(shares) >= 2 and shares[-1][0] > 20 and sum(shares[-1]) == 32, out
    assert "compute ms [" in out and "ideal step time" in out, out


def test_bad_slow_argument_is_named():
    proc = run_python([os.path.join(ROOT, "examples/heterogeneous.py"), "--slow", "x"], timeout=60)
    assert proc.returncode == 2
    assert "--slow takes RANK:FACTOR, e.g. 1:3, got 'x'" in proc.stderr
