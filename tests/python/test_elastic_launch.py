"""`phalanx launch --elastic`: lost ranks do not stop the job, a replacement joins at the next
commit, and below --min-nproc every rank stops with its reason in the launcher's summary."""

from __future__ import annotations

import os
import re

import pytest
from _elastic_job import HELPER, load, reference_run, same_params
from _spawn import python_env, run_python

from phalanx.distributed.emulate import PhoneCluster, missing_capability

BOUND = 90  # seconds, start-up included


def launch(*args, timeout=BOUND, hb_timeout=10):
    """`phalanx launch --elastic ARGS... HELPER TRAIN_ARGS` (the last argument, a list).
    hb_timeout: the heartbeat timeout; short only where a frozen rank must be detected."""
    cmd = ["-m", "phalanx.distributed.launch", "--elastic", *args[:-1]]
    cmd += ["--env", "PHALANX_HEARTBEAT_INTERVAL=0.5"]
    cmd += ["--env", f"PHALANX_HEARTBEAT_TIMEOUT={hb_timeout}"]
    cmd += [HELPER, *args[-1]]
    done = run_python(cmd, env=python_env(), timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def test_kill_one_then_a_second_then_one_comes_back(tmp_path):
    out = str(tmp_path)
    steps = 40
    train = [out, "--steps", str(steps), "--step-sleep", "0.1"]
    train += ["--event", "kill:2:5", "--event", "kill:1:14"]
    # However slowly the replacement starts (under qemu, longer than the whole run took),
    # member 0 holds at step 20 until it is about to ask to join.
    train += ["--event", "awaitjoin:0:20"]
    code, text = launch("--nproc", "3", "--max-restarts", "1", "--restart-delay", "0.5", train)
    assert code == 0, text
    assert "lost members [2, 1], started members [3]" in text, text
    assert "joined [3]" in text, text
    finals = [load(os.path.join(out, f"final_m{m}.pkl")) for m in (0, 3)]
    assert [f["step"] for f in finals] == [steps, steps], text
    assert [f["world"] for f in finals] == [2, 2], text
    assert finals[0]["generation"] == finals[1]["generation"] >= 3, text
    assert same_params(finals[0], finals[1]), "the joiner's parameters differ from rank 0's"
    for m in (1, 2):
        assert not os.path.exists(os.path.join(out, f"final_m{m}.pkl"))


def test_a_replacement_still_starting_when_the_job_completes_is_removed(tmp_path):
    # The last member finished while the replacement was still starting: the job completed;
    # the launcher had reported "no member of the job's current generation is left" instead.
    out = str(tmp_path)
    train = [out, "--steps", "8", "--event", "kill:1:3", "--join-delay", "60"]
    code, text = launch("--nproc", "2", "--max-restarts", "1", "--restart-delay", "0", train)
    assert code == 0, text
    assert "member 2 is not in the job's newest generation and the job completed" in text, text
    assert "no member of the job's current generation is left" not in text, text
    assert load(os.path.join(out, "final_m0.pkl"))["step"] == 8, text
    assert not os.path.exists(os.path.join(out, "final_m2.pkl")), text


def test_a_frozen_rank_left_behind_is_removed_when_the_job_completes(tmp_path):
    train = [str(tmp_path), "--steps", "16", "--event", "stop:2:5"]
    code, text = launch("--nproc", "3", train, hb_timeout=3)
    assert code == 0, text
    assert "member 2 is not in the job's newest generation and the job completed" in text, text
    assert "member 2: removed from the job (not in its newest generation)" in text, text
    final = load(os.path.join(str(tmp_path), "final_m0.pkl"))
    assert final["step"] == 16 and final["world"] == 2, text


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


MISSING = missing_capability(memory=False)


@pytest.mark.skipif(MISSING is not None, reason=f"no emulated phones: {MISSING}")
def test_on_emulated_phones_survivors_continue_exactly(tmp_path):
    """Three phones (network namespaces, 100 Mbit/s links) under `launch --hosts`: phone 2
    dies mid-training, and the survivors end with the parameters of a two-rank run from the
    committed state (run here, on loopback: the arithmetic is the same)."""
    out = str(tmp_path)
    argv = ["--steps", "16", "--commit-every", "2"]
    with PhoneCluster(3, link="100mbit") as c:
        job = c.launch(
            HELPER,
            [out, *argv, "--event", "kill:2:7"],
            launch_args=["--elastic", "--env", "PHALANX_HEARTBEAT_INTERVAL=0.5"],
        )
        code = job.wait(timeout=BOUND)
        text = job.stdout() + job.stderr()
    assert code == 0, text
    assert "lost members [2]" in text, text
    finals = [load(os.path.join(out, f"final_m{m}.pkl")) for m in (0, 1)]
    assert [f["world"] for f in finals] == [2, 2], text
    ref = reference_run(out, os.path.join(out, "restored_g1_m0.pkl"), 2, argv, BOUND)
    assert same_params(finals[0], ref), "survivors' parameters differ from the reference run"
