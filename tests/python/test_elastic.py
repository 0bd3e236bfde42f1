"""Elastic training (phalanx.distributed.elastic): a lost rank does not stop the job.

Local ranks around a store this test hosts (the launcher's role). The failures are SIGKILL
(the process vanishes) and SIGSTOP (frozen with its connections open, like an unplugged
phone); the survivors must continue from the last commit and end with exactly the parameters
of a run started from that commit with the survivors only."""

from __future__ import annotations

import os
import signal

from _elastic_job import Job, load, reference_run, same_params

STEPS = 16
BOUND = 60  # seconds a job may take, start-up included


def test_killed_rank_survivors_continue_exactly(tmp_path):
    out = str(tmp_path)
    argv = ["--steps", str(STEPS), "--commit-every", "2", "--event", "kill:2:7"]
    with Job(out, 3, argv) as job:
        codes = job.finish(BOUND)
        text = job.outputs()
    assert codes[2] == -signal.SIGKILL, text
    assert codes[0] == 0 and codes[1] == 0, text
    restored = [load(os.path.join(out, f"restored_g1_m{m}.pkl")) for m in (0, 1)]
    assert [r["step"] for r in restored] == [6, 6], text  # the commit before the kill
    assert [r["world"] for r in restored] == [2, 2]
    finals = [load(os.path.join(out, f"final_m{m}.pkl")) for m in (0, 1)]
    assert all(f["step"] == STEPS and f["generation"] == 1 for f in finals), text
    assert same_params(finals[0], finals[1])
    ref = reference_run(out, os.path.join(out, "restored_g1_m0.pkl"), 2, argv[:4], BOUND)
    assert ref["step"] == STEPS
    assert same_params(finals[0], ref), "survivors' parameters differ from the reference run"


def test_frozen_rank_is_fenced_when_it_wakes(tmp_path):
    out = str(tmp_path)
    argv = ["--steps", str(STEPS), "--event", "stop:2:5", "--step-sleep", "0.15"]
    with Job(out, 3, argv) as job:
        restored = [os.path.join(out, f"restored_g1_m{m}.pkl") for m in (0, 1)]
        job.wait_for(lambda: all(map(os.path.exists, restored)), BOUND, "survivors re-formed")
        assert job.procs[0].poll() is None, "survivors should still be training"
        job.signal(2, signal.SIGCONT)  # wakes while the others train in generation 1
        codes = job.finish(BOUND)
        text = job.outputs()
    assert codes[0] == 0 and codes[1] == 0, text
    assert codes[2] not in (0, None), text
    assert "RemovedFromJob" in job_text(text, 2) and "removed from the job" in text, text
    finals = [load(os.path.join(out, f"final_m{m}.pkl")) for m in (0, 1)]
    assert all(f["step"] == STEPS and f["world"] == 2 for f in finals), text
    assert same_params(finals[0], finals[1])


def test_below_min_nproc_every_rank_stops_with_its_reason(tmp_path):
    out = str(tmp_path)
    argv = ["--steps", str(STEPS), "--event", "kill:2:5"]
    with Job(out, 3, argv, PHALANX_ELASTIC_MIN_NPROC="3") as job:
        codes = job.finish(BOUND)
        text = job.outputs()
    assert codes[2] == -signal.SIGKILL, text
    for m in (0, 1):
        assert codes[m] not in (0, None), text
        mine = job_text(text, m)
        assert "TooFewRanks" in mine and "fewer than min_nproc=3" in mine, text
        assert f"member {m} stops" in mine, text


def job_text(text: str, member: int) -> str:
    """One member's part of Job.outputs()."""
    part = text.split(f"--- member {member}:\n", 1)[1]
    return part.split("\n--- member ", 1)[0]
