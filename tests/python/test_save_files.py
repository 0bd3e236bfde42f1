"""phalanx.save / load and the files they touch: paths with NUL bytes, temporaries left by a
killed save, and several threads saving one path at once."""

import os
import signal
import subprocess
import textwrap
import threading
import time

import pytest
from _spawn import PYTHON, python_env

import phalanx
from phalanx.utils.checkpoint import Checkpoint
from phalanx.utils.data import idx
from phalanx.utils.data.datasets import CIFAR10, MNIST


def test_nul_byte_in_a_path_is_refused_not_truncated(tmp_path):
    victim = tmp_path / "victim"
    phalanx.save({"v": 1}, victim)
    for p in (str(victim) + "\0other", os.fsencode(victim) + b"\0other"):
        with pytest.raises(ValueError, match="embedded null byte"):
            phalanx.load(p)
    with pytest.raises(ValueError, match="embedded null byte"):
        phalanx.save({"x": 1}, str(tmp_path / "ck.phx") + "\0.bak")
    with pytest.raises(ValueError, match="embedded null byte"):
        phalanx.save({"x": 1}, str(victim) + "\0.bak")
    assert sorted(os.listdir(tmp_path)) == ["victim"]
    assert phalanx.load(victim) == {"v": 1}  # untouched
    with pytest.raises(ValueError, match="embedded null byte"):
        Checkpoint(str(tmp_path / "ck.phx") + "\0.bak")


def test_nul_byte_in_a_dataset_path_is_refused(tmp_path):
    # Before: "directory not found" / "file not found" for a directory that exists.
    for make in (
        lambda: CIFAR10(str(tmp_path) + "\0x"),
        lambda: MNIST(str(tmp_path) + "\0x"),
        lambda: idx.read_idx(str(tmp_path / "a.idx") + "\0x"),
        lambda: idx.load_fashion_mnist(str(tmp_path) + "\0x"),
    ):
        with pytest.raises(ValueError, match="embedded null byte"):
            make()
    with pytest.raises(ValueError, match="embedded null byte"):
        phalanx._C.data.read_cifar10([str(tmp_path / "b.bin") + "\0x"])


_SAVER = textwrap.dedent(
    """
    import sys
    import phalanx
    path, named = sys.argv[1], sys.argv[2] == "1"
    big = phalanx.randn(4 << 20)  # 16 MB, written in 64 KiB records: each save takes a while
    print("ready", flush=True)
    for i in range(10**9):
        phalanx.save({"i": i, "w": big}, path, _chunk_bytes=1 << 16, _named_temp=named)
    """
)


def _writing_into(pid: int, directory: str) -> bool:
    """Whether process `pid` has a file in `directory` open: the temporary of a save."""
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(directory + os.sep):
            return True
    return False


@pytest.mark.parametrize("named", [False, True], ids=["unnamed_temp", "named_temp"])
def test_save_killed_mid_write_leaves_no_temporary_behind(tmp_path, named):
    path = str(tmp_path / "ckpt.phx")
    phalanx.save({"i": -1, "w": phalanx.ones(3)}, path)
    for _ in range(2):  # one leftover per kill, before
        child = subprocess.Popen(
            [*PYTHON, "-c", _SAVER, path] + ["1" if named else "0"],
            stdout=subprocess.PIPE,
            text=True,
            env=python_env(),
        )
        try:
            assert child.stdout.readline() == "ready\n"
            deadline = time.monotonic() + 60
            while not _writing_into(child.pid, str(tmp_path)):  # mid-save, for certain
                assert time.monotonic() < deadline, "the child never started writing"
                time.sleep(0.002)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=60)
            child.stdout.close()
        # The target is the previous checkpoint or one complete save of the child.
        assert phalanx.load(path)["i"] >= -1
    phalanx.save({"i": "after"}, path)  # removes what a dead writer left
    assert os.listdir(tmp_path) == ["ckpt.phx"]
    assert phalanx.load(path) == {"i": "after"}


@pytest.mark.parametrize("named", [False, True], ids=["unnamed_temp", "named_temp"])
def test_threads_saving_one_path_always_leave_a_complete_checkpoint(tmp_path, named):
    # Before: all threads of a process wrote `<path>.tmp.<pid>`, so one kept writing into the
    # file another had already renamed over the target, which then failed to load.
    path = str(tmp_path / "ckpt.phx")
    threads_n, rounds, numel = 4, 8, 1 << 18
    phalanx.save({"writer": -1, "round": 0, "w": phalanx.full([numel], -1000.0)}, path)
    errors, loads = [], [0]
    done = threading.Event()

    def check(obj):
        assert set(obj) == {"writer", "round", "w"}
        want = obj["writer"] * 1000.0 + obj["round"]
        w = obj["w"]
        assert w.shape == (numel,)
        assert float(w.min()) == want and float(w.max()) == want

    def saver(t):
        try:
            for r in range(rounds):
                value = phalanx.full([numel], t * 1000.0 + r)
                obj = {"writer": t, "round": r, "w": value}
                phalanx.save(obj, path, _chunk_bytes=1 << 14, _named_temp=named)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def loader():
        try:
            while not done.is_set():
                check(phalanx.load(path))
                loads[0] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    savers = [threading.Thread(target=saver, args=(t,)) for t in range(threads_n)]
    reader = threading.Thread(target=loader)
    reader.start()
    for s in savers:
        s.start()
    for s in savers:
        s.join(timeout=600)
    done.set()
    reader.join(timeout=600)
    assert not errors, errors
    assert loads[0] > 0
    final = phalanx.load(path)
    check(final)
    assert final["round"] == rounds - 1  # the last save of some writer
    assert os.listdir(tmp_path) == ["ckpt.phx"]
