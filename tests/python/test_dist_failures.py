"""Failure detection: a rank killed (SIGKILL) or frozen (SIGSTOP) mid-training, the store's
host killed, a clean departure, a crash, and a long collective that must not be cut short.

Ranks run this file's _rank_main, started by the tests' harness (_spawn.Ranks). A rank writes
a "ready" file once it is in its loop, so the test signals it mid-run; every rank prints one
line "RESULT <what> <seconds> <message>" and the test bounds how long survivors took.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import traceback

import numpy as np
import pytest
from _spawn import Ranks, call, free_port

import phalanx
import phalanx.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"


def start(case: str, world: int, tmp_path, env=None) -> Ranks:
    """`world` ranks running `case`; each writes tmp_path/ready.<rank> once in its loop."""
    env = dict(PHX_READY_DIR=str(tmp_path), **(env or {}))
    return Ranks("test_dist_failures", "_rank_main", world, argv=[case], env=env)


def wait_ready(ranks: Ranks, tmp_path, timeout=60.0) -> None:
    ranks.wait_files([str(tmp_path / f"ready.{r}") for r in range(len(ranks))], timeout)


def result(res):
    code, out, err, _ = res
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT (exit {code})\nstdout:\n{out}\nstderr:\n{err}"
    return lines[-1]


# --------------------------------------------------------------------------- rank side


def _ready(rank):
    with open(os.path.join(os.environ["PHX_READY_DIR"], f"ready.{rank}"), "w"):
        pass


def _train(rank, world, group=None, steps=None):
    """A training-like loop of small all-reduces (about 50 a second); `steps` of them, or
    without end."""
    step = 0
    while steps is None or step < steps:
        t = phalanx.from_numpy(np.ones(4096, np.float32))
        dist.all_reduce(t, group=group)
        step += 1
        if step == 5:
            _ready(rank)
        time.sleep(0.02)


def case_train(rank, world):
    try:
        _train(rank, world)
    except Exception as e:  # the failure the test provoked
        print(f"RESULT failed {type(e).__name__}: {e}", flush=True)
        sys.exit(3)


def case_slow_rank(rank, world):
    # Rank 1 computes (holding the GIL, as pure Python does) for several heartbeat timeouts
    # before joining the all-reduce; rank 0 waits in it all that time. Nothing is lost.
    _ready(rank)
    t = phalanx.from_numpy(np.full(1 << 20, rank + 1, np.float32))
    if rank == 1:
        end = time.monotonic() + float(os.environ["PHX_SLOW_SECONDS"])
        x = 0
        while time.monotonic() < end:
            x += 1
    t0 = time.monotonic()
    dist.all_reduce(t)
    assert float(t.numpy()[0]) == world * (world + 1) / 2
    print(f"RESULT ok {time.monotonic() - t0:.2f}", flush=True)


def case_leave(rank, world):
    # Everyone builds the subgroup {0, 1}; rank 2 then leaves (how: PHX_LEAVE) while 0 and 1
    # train on for several heartbeat timeouts.
    sub = dist.new_group([0, 1])
    dist.all_reduce(phalanx.from_numpy(np.ones(8, np.float32)))
    _ready(rank)
    how = os.environ["PHX_LEAVE"]
    if rank == 2:
        if how == "destroy":
            dist.destroy_process_group()
        elif how == "crash":
            raise KeyError("a bug in the training script")
        print("RESULT left", flush=True)
        return  # "atexit": the script just ends
    try:
        _train(rank, world, group=sub, steps=int(os.environ["PHX_TRAIN_STEPS"]))
    except Exception as e:
        print(f"RESULT failed {type(e).__name__}: {e}", flush=True)
        sys.exit(3)
    print("RESULT ok", flush=True)
    dist.destroy_process_group()


CASES = {k[5:]: v for k, v in list(globals().items()) if k.startswith("case_")}


def _rank_main():
    case = sys.argv[-1]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        dist.init_process_group("gloo", timeout=float(os.environ.get("PHX_TEST_TIMEOUT", "60")))
    except BaseException:
        traceback.print_exc()
        sys.exit(2)
    CASES[case](rank, world)  # an exception ends the script as an unhandled one would


# --------------------------------------------------------------------------- tests

LOST = r"rank {r} \(host 127\.0\.0\.1\) lost: {why}"


def test_killed_rank_stops_every_survivor_within_seconds(tmp_path):
    # Default heartbeat settings (timeout 10 s): a killed process is noticed by its closed
    # connection, long before any timeout, whichever survivor waits on whom.
    with start("train", 4, tmp_path) as ranks:
        wait_ready(ranks, tmp_path)
        ranks.procs[2].kill()
        res = ranks.finish([0, 1, 3], timeout=30)
        for r, rr in res.items():
            line = result(rr)
            assert rr[0] == 3, line
            assert rr[3] < 6, f"rank {r} took {rr[3]:.1f} s: {line}"
            assert re.search(LOST.format(r=2, why="connection closed without goodbye"), line), line


def test_frozen_rank_stops_every_survivor_within_the_heartbeat_timeout(tmp_path):
    # SIGSTOP: the process and its connections stay, it just never answers (a phone frozen or
    # unplugged). Gloo alone would wait out its 60 s timeout.
    env = {"PHALANX_HEARTBEAT_TIMEOUT": "3", "PHALANX_HEARTBEAT_INTERVAL": "0.5"}
    with start("train", 3, tmp_path, env=env) as ranks:
        wait_ready(ranks, tmp_path)
        os.kill(ranks.procs[1].pid, signal.SIGSTOP)
        res = ranks.finish([0, 2], timeout=30)
        for r, rr in res.items():
            line = result(rr)
            assert rr[0] == 3, line
            assert rr[3] < 9, f"rank {r} took {rr[3]:.1f} s: {line}"
            assert re.search(LOST.format(r=1, why=r"no heartbeat for \d+\.\d s"), line), line
        ranks.procs[1].kill()


def test_killed_store_host_stops_the_others_naming_it(tmp_path):
    with start("train", 3, tmp_path, env={"PHALANX_HEARTBEAT_TIMEOUT": "3"}) as ranks:
        wait_ready(ranks, tmp_path)
        ranks.procs[0].kill()  # rank 0 hosts the store
        res = ranks.finish([1, 2], timeout=30)
        for r, rr in res.items():
            line = result(rr)
            assert rr[0] == 3, line
            assert rr[3] < 9, f"rank {r} took {rr[3]:.1f} s: {line}"
            assert re.search(r"store at 127\.0\.0\.1:\d+ \(hosted by rank 0\)", line), line


def test_collective_longer_than_the_heartbeat_timeout_completes(tmp_path):
    env = {
        "PHALANX_HEARTBEAT_TIMEOUT": "2",
        "PHALANX_HEARTBEAT_INTERVAL": "0.3",
        "PHX_SLOW_SECONDS": "5",
    }
    with start("slow_rank", 2, tmp_path, env=env) as ranks:
        res = ranks.finish([0, 1], timeout=60)
        lines = {r: result(rr) for r, rr in res.items()}
        for r, rr in res.items():
            assert rr[0] == 0, f"rank {r}: {lines[r]}\n{rr[2]}"
        assert float(lines[0].split()[2]) > 4, lines  # rank 0 did wait in the all-reduce


@pytest.mark.parametrize("how", ["destroy", "atexit"])
def test_clean_departure_is_not_a_failure(tmp_path, how):
    env = {
        "PHALANX_HEARTBEAT_TIMEOUT": "2",
        "PHALANX_HEARTBEAT_INTERVAL": "0.3",
        "PHX_LEAVE": how,
        "PHX_TRAIN_STEPS": "200",  # 4 s and more: twice the heartbeat timeout
    }
    with start("leave", 3, tmp_path, env=env) as ranks:
        res = ranks.finish([2, 0, 1], timeout=60)
        assert result(res[2]) == "RESULT left"
        for r in (0, 1):
            assert res[r][0] == 0 and result(res[r]) == "RESULT ok", res[r]


def test_rank_ending_in_an_unhandled_exception_is_reported_at_once(tmp_path):
    env = {"PHX_LEAVE": "crash", "PHX_TRAIN_STEPS": "1000000"}  # heartbeat timeout 10 s
    with start("leave", 3, tmp_path, env=env) as ranks:
        wait_ready(ranks, tmp_path)
        res = ranks.finish([2, 0, 1], timeout=40)
        assert "KeyError" in res[2][2]
        for r in (0, 1):
            line = result(res[r])
            assert res[r][0] == 3, line
            assert res[r][3] < 8, f"rank {r} took {res[r][3]:.1f} s: {line}"
            assert re.search(LOST.format(r=2, why="connection closed without goodbye"), line)


# --------------------------------------------------------------------------- in process


def _pair_of_groups(store, prefix="pair"):
    """Two ProcessGroups (ranks 0 and 1) of one store, in this process, each with its own
    client (one client serves one blocking request at a time)."""
    import threading

    groups = [None, None]
    clients = [store, dist.TCPStore(HOST, store.port, 2, timeout=30, job_id=store.job_id)]

    def make(r):
        groups[r] = phalanx._C.dist.ProcessGroup(clients[r]._store, r, 2, HOST, "", 30.0, prefix)

    threads = [threading.Thread(target=make, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(groups), "rendezvous failed"
    return groups


def test_abort_fails_pending_and_later_operations_at_once():
    store = dist.TCPStore(HOST, 0, 2, is_master=True, timeout=30, job_id="abort")
    pg0, pg1 = _pair_of_groups(store)
    try:
        t = phalanx.from_numpy(np.ones(16, np.float32))
        work = pg0.all_reduce(t, dist.ReduceOp.SUM)  # rank 1 never joins: it would wait 30 s
        queued = pg0.barrier()
        time.sleep(0.2)
        assert not work.is_completed()
        t0 = time.monotonic()
        pg0.abort("rank 1 (host h) lost: testing")
        with pytest.raises(RuntimeError, match=r"aborted: rank 1 \(host h\) lost: testing"):
            work.wait()
        with pytest.raises(RuntimeError, match="testing"):
            queued.wait()
        with pytest.raises(RuntimeError, match="testing"):
            pg0.all_reduce(t, dist.ReduceOp.SUM)
        assert pg0.aborted and "testing" in pg0.abort_reason
        pg0.shutdown()  # must not wait for the thread stuck in Gloo
        assert time.monotonic() - t0 < 5
        pg0.abort("a second reason is ignored")
        assert "testing" in pg0.abort_reason
    finally:
        pg1.shutdown()


class _SlowFinalization:
    """Sleeps in __del__, run when module globals are cleared: well inside finalization."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __del__(self, sleep=time.sleep):
        sleep(self.seconds)


def _abandoned_thread_at_exit_main():
    """The child of test_abandoned_thread_leaving_gloo_during_exit_is_harmless."""
    global _slow_exit
    store = dist.TCPStore(HOST, 0, 2, is_master=True, timeout=30, job_id="exit")
    pg0, pg1 = _pair_of_groups(store)
    t = phalanx.from_numpy(np.ones(16, np.float32))  # its memory is released under the GIL
    work = pg0.all_reduce(t, dist.ReduceOp.SUM, 1.5)  # rank 1 never joins: in Gloo for 1.5 s
    time.sleep(0.1)
    pg0.abort("testing")
    with pytest.raises(RuntimeError, match="testing"):
        work.wait()
    pg0.shutdown()  # abandons the thread, still in Gloo with the last reference to t
    del t, work
    _slow_exit = _SlowFinalization(4.0)  # the thread leaves Gloo while the interpreter finalizes
    print("OK", flush=True)


def test_abandoned_thread_leaving_gloo_during_exit_is_harmless():
    """A communication thread abandoned by an abort must never take the GIL (to release a
    numpy-backed tensor) once the interpreter finalizes: CPython ends such a thread with
    pthread_exit, and the unwinding aborted the process ("terminate called without an active
    exception") after it had passed its checks."""
    done = call("test_dist_failures", "_abandoned_thread_at_exit_main", timeout=60)
    assert done.returncode == 0 and "OK" in done.stdout, (
        f"exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )


def test_heartbeat_settings_are_checked(monkeypatch):
    port = free_port()
    kw = dict(init_method=f"tcp://{HOST}:{port}", rank=0, world_size=1, timeout=10)
    with pytest.raises(ValueError, match="longer than heartbeat_interval"):
        dist.init_process_group("gloo", heartbeat_interval=2, heartbeat_timeout=1, **kw)
    monkeypatch.setenv("PHALANX_HEARTBEAT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="PHALANX_HEARTBEAT_TIMEOUT"):
        dist.init_process_group("gloo", **kw)
    monkeypatch.setenv("PHALANX_HEARTBEAT_TIMEOUT", "-1")
    with pytest.raises(ValueError, match="heartbeat_timeout must be >= 0"):
        dist.init_process_group("gloo", **kw)
    assert not dist.is_initialized()
    monkeypatch.setenv("PHALANX_HEARTBEAT_TIMEOUT", "0")  # disabled
    dist.init_process_group("gloo", **kw)
    try:
        assert dist._state.watchdog is None
    finally:
        dist.destroy_process_group()
    monkeypatch.delenv("PHALANX_HEARTBEAT_TIMEOUT")
    dist.init_process_group("gloo", heartbeat_interval=0.2, heartbeat_timeout=1, **kw)
    try:
        assert dist._state.watchdog is not None and dist._state.watchdog.failure == ""
        t = phalanx.from_numpy(np.ones(3, np.float32))
        dist.all_reduce(t)
    finally:
        dist.destroy_process_group()
