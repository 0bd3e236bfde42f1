"""phalanx.multiprocessing: torch.multiprocessing's spawn over the standard library."""

import pytest

import phalanx.multiprocessing as mp
from phalanx.multiprocessing import ProcessRaisedException


def _write_rank(i, path):
    with open(f"{path}.{i}", "w") as f:
        f.write(str(i * 10))


def _fail_on_one(i):
    if i == 1:
        raise SystemExit(3)


def test_spawn_runs_fn_with_index(tmp_path):
    path = str(tmp_path / "out")
    assert mp.spawn(_write_rank, args=(path,), nprocs=3) is None
    assert [open(f"{path}.{i}").read() for i in range(3)] == ["0", "10", "20"]


def test_spawn_names_failed_process():
    with pytest.raises(ProcessRaisedException, match="process 1 of 2 exited with code 3"):
        mp.spawn(_fail_on_one, nprocs=2)


def test_spawn_join_false_and_stdlib_names(tmp_path):
    ctx = mp.spawn(_write_rank, args=(str(tmp_path / "o"),), nprocs=2, join=False)
    assert len(ctx.pids()) == 2
    assert ctx.join() is True
    assert mp.cpu_count() >= 1 and mp.Queue is not None
    with pytest.raises(ValueError, match="nprocs must be a positive int, got 0"):
        mp.spawn(_write_rank, nprocs=0)
