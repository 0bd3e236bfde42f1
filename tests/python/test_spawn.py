"""The tests' process harness (_spawn) itself: children import the same phalanx as the test,
every wait is bounded, and nothing a test started outlives it — not on a timeout, not when
the test fails inside a `with Ranks(...)` block, not a frozen rank, not a rank's own child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _spawn import PYTHON, Ranks, World, alive, call, run_python, run_ranks, scaled, serve

import phalanx


def gone_within(pids, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while any(alive(p) for p in pids):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def pids_in(directory) -> list[int]:
    return [int(p) for name in os.listdir(directory) for p in open(directory / name).read().split()]


# --------------------------------------------------------------------------- child side


def _same_phalanx() -> None:
    print(phalanx.__file__, sys.flags.no_site, flush=True)


def _rank_with_a_grandchild() -> None:
    """Starts a long sleep (in this rank's process group), records both pids, then waits."""
    child = subprocess.Popen(["sleep", "300"])
    rank = os.environ["RANK"]
    path = os.path.join(sys.argv[1], f"rank{rank}")
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.rename(path + ".tmp", path)  # appears whole
    time.sleep(300)


def _rank_env() -> None:
    keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "PHALANX_JOB_ID"]
    print(" ".join(os.environ[k] for k in keys), sys.argv[1:], flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    sys.exit(int(os.environ["RANK"]))


def _rank_exits_early() -> None:
    print("giving up", flush=True)
    sys.exit(7)


def sum_ranks(rank, world, bias):
    import numpy as np

    import phalanx.distributed as dist

    t = phalanx.from_numpy(np.full(3, rank + bias, np.float32))
    dist.all_reduce(t)
    return t.numpy().tolist()


def fail_on_rank_1(rank, world):
    if rank == 1:
        raise ValueError("rank 1 does not like this")
    return rank


def case_echo(rank, world, x):
    return [rank, world, x]


def case_raise(rank, world):
    raise KeyError("boom")


def _serve() -> None:
    serve({"echo": case_echo, "raise": case_raise}, lambda: None, lambda: None)


# --------------------------------------------------------------------------- tests


def test_children_import_the_same_phalanx_with_the_same_flags():
    done = call("test_spawn", "_same_phalanx")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [phalanx.__file__, str(sys.flags.no_site)]
    assert PYTHON[0] == sys.executable and ("-S" in PYTHON) == bool(sys.flags.no_site)


def test_run_python_keeps_output_as_is():
    done = run_python(["-c", "import sys; print('a\\r b'); sys.stderr.write('e'); sys.exit(4)"])
    assert (done.returncode, done.stdout, done.stderr) == (4, "a\r b\n", "e")


def test_run_python_timeout_kills_the_child_and_what_it_started(tmp_path):
    code = (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(tmp_path / 'pids')!r}, 'w').write(str(c.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(300)\n"
    )
    t0 = time.monotonic()
    # the bound given is scaled under emulation (PHALANX_TEST_TIME_SCALE), and says so
    with pytest.raises(
        AssertionError, match=rf"(?s)ran longer than {scaled(2):g} s; killed.*started"
    ):
        run_python(["-c", code], timeout=2)
    assert time.monotonic() - t0 < scaled(15)
    assert gone_within(pids_in(tmp_path), 5)


def test_ranks_get_their_variables_and_outputs():
    with Ranks("test_spawn", "_rank_env", 3, argv=["x", "y z"], env={"A": "1"}) as ranks:
        done = ranks.finish(timeout=60)
    assert sorted(done) == [0, 1, 2]
    for r, d in done.items():
        assert d.returncode == r
        fields = d.stdout.split(" ", 6)
        assert fields[:5] == [str(r), str(r), "3", "127.0.0.1", str(ranks.port)], d.stdout
        assert fields[5] == f"test-{os.getpid()}-{ranks.port}"
        assert fields[6] == "['x', 'y z']\n"
        assert d.stderr == "to stderr\n"


def test_ranks_are_killed_with_their_children_when_the_test_fails(tmp_path):
    """An exception inside the block (a failed assertion) ends every rank, a frozen one
    included, and the processes the ranks started."""
    with pytest.raises(AssertionError, match="the test failed"):
        with Ranks("test_spawn", "_rank_with_a_grandchild", 3, argv=[str(tmp_path)]) as ranks:
            ranks.wait_files([str(tmp_path / f"rank{r}") for r in range(3)], timeout=60)
            os.kill(ranks.procs[1].pid, signal.SIGSTOP)
            raise AssertionError("the test failed")
    pids = pids_in(tmp_path)
    assert len(pids) == 6
    assert gone_within(pids, 5), [p for p in pids if alive(p)]


def test_finish_is_bounded_and_says_it_killed(tmp_path):
    with Ranks("test_spawn", "_rank_with_a_grandchild", 2, argv=[str(tmp_path)]) as ranks:
        t0 = time.monotonic()
        done = ranks.finish([1], timeout=3)
        assert time.monotonic() - t0 < scaled(10)
        assert list(done) == [1] and done[1].returncode == -signal.SIGKILL
        assert f"[killed by the test: still running after {scaled(3):g} s]" in done[1].stderr
        assert ranks.procs[0].poll() is None  # only the ranks asked for
    assert gone_within(pids_in(tmp_path), 5)


def test_wait_files_reports_a_rank_that_exited_early(tmp_path):
    with Ranks("test_spawn", "_rank_exits_early", 2) as ranks:
        with pytest.raises(AssertionError, match=r"(?s)rank \d exited 7 early.*giving up"):
            ranks.wait_files([str(tmp_path / "r0"), str(tmp_path / "r1")], timeout=60)


def test_wait_files_is_bounded(tmp_path):
    with Ranks("test_spawn", "_rank_with_a_grandchild", 1, argv=[str(tmp_path)]) as ranks:
        t0 = time.monotonic()
        with pytest.raises(
            AssertionError, match=rf"ranks \[0\] were not ready within {scaled(1):g} s"
        ):
            ranks.wait_files([str(tmp_path / "never")], timeout=1)
        assert time.monotonic() - t0 < scaled(5)


def test_run_ranks_returns_by_rank_and_reports_failures():
    assert run_ranks("test_spawn", "sum_ranks", 2, (1,)) == [[3.0] * 3, [3.0] * 3]
    with pytest.raises(AssertionError, match=r"(?s)ranks \[1\] failed.*does not like this"):
        run_ranks("test_spawn", "fail_on_rank_1", 2)


def test_world_runs_cases_and_breaks_on_an_exception():
    with World("test_spawn", 2) as world:
        assert world.run("echo", 5) == [[0, 2, 5], [1, 2, 5]]
        assert world.run("echo", "again") == [[0, 2, "again"], [1, 2, "again"]]
        with pytest.raises(AssertionError, match=r"(?s)raise failed on the world of 2.*KeyError"):
            world.run("raise")
        assert world.broken
        with pytest.raises(RuntimeError, match="broken"):
            world.run("echo", 1)
        assert all(p.poll() is not None for p in world.procs)
