"""`phalanx launch --elastic`: lost ranks do not stop the job, a replacement joins at the next
commit, and below --min-nproc every rank stops with its reason in the launcher's summary."""

from __future__ import annotations

import os
import re

import pytest
from _elastic_job import HELPER, load, same_params
from _spawn import python_env, run_python

BOUND = 90  # seconds, start-up included


def launch(*args, timeout=BOUND):
    cmd = ["-m", "phalanx.distributed.launch", "--elastic", *args[:-1]]
    cmd += ["--env", "PHALANX_HEARTBEAT_INTERVAL=0.5", "--env", "PHALANX_HEARTBEAT_TIMEOUT=3"]
    cmd += [HELPER, *args[-1]]
    done = run_python(cmd, env=python_env(), timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def test_kill_one_then_a_second_then_one_comes_back(tmp_path):
    out = str(tmp_path)
    steps = 40
    train = [out, "--steps", str(steps), "--step-sleep", "0.1"]
    train += ["--event", "kill:2:5", "--event", "kill:1:14"]
    code, text = launch("--nproc", "3", "--max-restarts", "1", "--restart-delay", "0.5", train)
    assert code == 0, text
    assert "lost members [2, 1], started members [3]" in text, text
    assert "joiners admitted" in text, text
    finals = [load(os.path.join(out, f"final_m{m}.pkl")) for m in (0, 3)]
    assert [f["step"] for f in finals] == [steps, steps], text
    assert [f["world"] for f in finals] == [2, 2], text
    assert finals[0]["generation"] == finals[1]["generation"] >= 3, text
    assert same_params(finals[0], finals[1]), "the joiner's parameters differ from rank 0's"
    for m in (1, 2):
        assert not os.path.exists(os.path.join(out, f"final_m{m}.pkl"))


def test_below_min_nproc_the_launcher_reports_every_reason(tmp_path):
    train = [str(tmp_path), "--steps", "20", "--event", "kill:2:5"]
    code, text = launch("--nproc", "3", "--min-nproc", "3", train)
    assert code != 0, text
    summary = text[text.index("elastic job failed") :]
    for m in (0, 1):
        line = next(x for x in summary.splitlines() if f"member {m}:" in x)
        assert "exited with code 1" in line and "TooFewRanks" in line, text
        assert "fewer than min_nproc=3" in line, text
    assert "member 2: killed by SIGKILL" in summary, text


def test_elastic_options_are_checked_before_anything_starts(tmp_path):
    from phalanx.distributed._launch.cli import parse_args
    from phalanx.distributed._launch.common import UsageError

    for args, message in [
        (["--elastic", "--nproc", "2", "--min-nproc", "3"], "--min-nproc must be from 1"),
        (["--elastic", "--nproc", "2", "--max-nproc", "1"], "--max-nproc (1) must be at least"),
        (["--elastic", "--nproc", "2", "--max-restarts", "-1"], "--max-restarts must be >= 0"),
        (["--nproc", "2", "--min-nproc", "1"], "--min-nproc needs --elastic"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            parse_args([*args, HELPER])
    args, specs = parse_args(["--elastic", "--nproc", "3", HELPER])
    assert (args.min_nproc, args.max_nproc, args.max_restarts) == (1, 3, 0)
