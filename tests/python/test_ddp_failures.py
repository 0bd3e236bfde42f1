"""A rank lost in the middle of DDP training, under the launcher: whether it dies (SIGKILL), is
frozen with its connections open (SIGSTOP, a phone unplugged or hung) or raises, every other
rank stops within seconds with an error naming the lost rank, the launcher reports it and exits
non-zero, and no process is left behind."""

from __future__ import annotations

import os
import signal

import pytest
from _spawn import python_env, run_python

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "launch_helpers", "ddp_train_rank.py")
BOUND = 60  # seconds a failed job may take to end, start-up included


def run_job(tmp_path, how: str, world: int = 3, fail_rank: int = 2, **env):
    cmd = ["-m", "phalanx.distributed.launch", "--nproc", str(world)]
    cmd += ["--kill-timeout", "3", HELPER, "10000", "--fail-rank", str(fail_rank)]
    cmd += ["--fail-step", "5", "--how", how, "--pid-dir", str(tmp_path)]
    proc = run_python(cmd, env=python_env(**env), timeout=BOUND)
    elapsed = proc.seconds
    out = proc.stdout + proc.stderr
    leftovers = []
    for name in os.listdir(tmp_path):
        pid = int((tmp_path / name).read_text())
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    leftovers.append(pid)
                    os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return proc.returncode, out, elapsed, leftovers


def survivors_named(out: str, lost: int, world: int) -> list[int]:
    """The surviving ranks whose own output names the lost rank in an error."""
    named = []
    for r in range(world):
        if r == lost:
            continue
        mine = [line for line in out.splitlines() if line.startswith(f"[rank {r}]")]
        if any(f"rank {lost}" in line and ("Error" in line or "lost" in line) for line in mine):
            named.append(r)
    return named


@pytest.mark.parametrize("how", ["kill", "raise"])
def test_rank_dying_mid_training_stops_the_job(tmp_path, how):
    code, out, elapsed, leftovers = run_job(tmp_path, how)
    assert code != 0, out
    assert "rank 2" in out, out
    assert "step 5" in out or "step 4" in out, out  # training had really started
    assert not leftovers, f"processes left behind: {leftovers}\n{out}"
    assert elapsed < BOUND


def test_frozen_rank_is_detected_by_heartbeat_and_named(tmp_path):
    code, out, elapsed, leftovers = run_job(tmp_path, "stop", PHALANX_HEARTBEAT_TIMEOUT="3")
    assert code != 0, out
    assert survivors_named(out, 2, 3) == [0, 1], out
    assert not leftovers, f"processes left behind: {leftovers}\n{out}"
    # start-up + heartbeat timeout + kill timeout, with room for a loaded machine
    assert elapsed < 40, f"took {elapsed:.1f} s\n{out}"
