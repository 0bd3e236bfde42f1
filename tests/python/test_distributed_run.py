"""phalanx.distributed.run, the notebook driver: return values of functions and classes that
exist only in the driver's __main__, exceptions re-raised with rank, host and traceback,
crashes, Ctrl-C and timeouts that leave nothing running, ranks over (fake) ssh, bad
arguments, and the transport's pieces.

The driver runs as a subprocess (launch_helpers/run_driver.py, bounded by a timeout) so that
its functions live in __main__ and so the interrupt test can signal it; bad arguments are
checked in-process (nothing starts).
"""

from __future__ import annotations

import json
import linecache
import os
import pickle
import shlex
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
from _spawn import PYTHON, alive, python_env, run_python, scaled, start_python

import phalanx
import phalanx.distributed as dist
from phalanx.distributed._driver import api, rank, transport

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch_helpers")
DRIVER = os.path.join(HELPERS, "run_driver.py")
FAKE_SSH = shlex.join(PYTHON + [os.path.join(HELPERS, "fake_ssh.py")])
REMOTE_PYTHON = shlex.join(PYTHON)
TIMEOUT = 90  # seconds one driver run may take


def driver(*args, timeout=TIMEOUT):
    env = python_env()
    env.pop("PHALANX_SSH", None)
    r = run_python([DRIVER, *args], env=env, timeout=timeout)
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, f"driver failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r, json.loads(lines[-1][len("RESULT ") :])


def rank_pids(pid_dir) -> list[int]:
    pids = []
    for name in os.listdir(pid_dir):
        if name.endswith(".pid"):
            with open(os.path.join(pid_dir, name)) as f:
                pids += [int(p) for p in f.read().split()]
    return pids


def wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def assert_all_gone(pid_dir, expected: int) -> None:
    pids = rank_pids(pid_dir)
    try:
        assert len(pids) == expected, pids
        # No grace: the driver returned, so every rank and its child must already be gone.
        wait_for(lambda: not any(alive(p) for p in pids), 1.0, f"processes {pids} to end")
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# ---------------------------------------------------------------------------- results


def test_return_values_of_classes_closures_and_tensors_defined_in_main():
    r, out = driver("values", "--nproc", "2")
    values = out["values"]
    assert [v["x"] for v in values] == [10, 11]  # the closure's scale, the Point sent out
    assert [v["y"] for v in values] == [3.5, 3.5]  # all-reduce 1 + 2, plus the kwarg
    assert all(v["is_point"] for v in values)  # the driver's own class came back
    assert [v["weight"] for v in values] == [[0.0, 0.0], [1.0, 1.0]]
    assert all(v["weight_type"] == "Parameter" and v["requires_grad"] for v in values)
    assert [v["big"] for v in values] == [5 << 20] * 2  # a 20 MiB argument, in chunks
    assert len({v["pid"] for v in values} | {os.getpid()}) == 3  # ranks are processes
    # rank 0's output is shown unprefixed, rank 1's not at all
    assert "hello from rank 0\n" in r.stdout and "rank 1" not in r.stdout
    assert "stderr of rank 0\n" in r.stderr and "stderr of rank 1" not in r.stderr


def test_output_all_prefixes_every_rank():
    r, out = driver("values", "--nproc", "2", "--output", "all")
    assert len(out["values"]) == 2
    for rank_ in (0, 1):
        assert f"[rank {rank_}] hello from rank {rank_}\n" in r.stdout
        assert f"[rank {rank_}] stderr of rank {rank_}\n" in r.stderr


def test_output_goes_to_the_current_sys_stdout(capsys):
    """In Jupyter the cell's stream is a Python object with no file behind it, as pytest's
    capture is: run() writes rank output there, not to file descriptor 1."""

    def fn(word):
        print(f"{word} {dist.get_rank()}")
        return dist.get_world_size()

    assert dist.run(fn, ("shown",), nproc=2) == [2, 2]
    assert capsys.readouterr().out == "shown 0\n"


# ---------------------------------------------------------------------------- failures


def test_an_exception_is_reraised_with_rank_host_and_traceback():
    r, out = driver("raise", "--nproc", "3", "--fail-rank", "2")
    e = out["error"]
    assert e["class"] == "RankError" and e["rank"] == 2 and e["host"] == "127.0.0.1"
    assert e["type_name"] == "__main__.TrainingDiverged"
    assert e["cause_is_local_class"] and e["exception_is_cause"]
    tb = e["remote_traceback"]
    assert "in raising_fn\n" in tb and "raise TrainingDiverged(" in tb
    assert "TrainingDiverged: loss is nan at step 7 on rank 2" in tb
    assert "rank 2 (host 127.0.0.1) failed while running fn" in e["message"]
    assert "_driver/rank.py" not in tb  # starts in the user's function
    # ranks 0 and 1 were blocked in a barrier: stopped (SIGTERM) at once, not after a timeout
    assert out["elapsed"] < 20, out


def test_a_crash_is_reported_with_the_last_lines_of_its_stderr():
    r, out = driver("crash", "--nproc", "2")
    e = out["error"]
    assert e["class"] == "RankError" and e["rank"] == 1 and e["type_name"] is None
    assert "rank 1 (host 127.0.0.1, pid " in e["message"]
    assert "exited with code 3" in e["message"]
    assert "rank 1 is about to crash" in e["message"]  # its stderr was not shown live
    assert out["elapsed"] < 20, out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_driver_stops_every_rank(tmp_path, sig):
    """SIGINT (Ctrl-C; Jupyter's interrupt, see the kernel test below) raises
    KeyboardInterrupt once every rank and the process it started are gone; SIGTERM stops
    them the same way, then takes its default effect on the driver."""
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    p = start_python(
        [DRIVER, "sleep", "--nproc", "2", "--pid-dir", str(pid_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(rank_pids(pid_dir)) == 4, 60, "both ranks to start")
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert f"got {signal.Signals(sig).name}: stopping every rank" in err.decode()
    if sig == signal.SIGINT:
        result = json.loads(out.decode().split("RESULT ", 1)[1])
        assert result["error"]["class"] == "KeyboardInterrupt", err.decode()
    else:
        assert p.returncode == -signal.SIGTERM and b"RESULT" not in out, (p.returncode, err)
    assert_all_gone(pid_dir, expected=4)


def test_timeout_stops_every_rank(tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    limit = f"{scaled(3):g}"  # long enough for the ranks to start (and write their pids)
    r, out = driver("sleep", "--nproc", "2", "--pid-dir", str(pid_dir), "--timeout", limit)
    assert out["error"]["class"] == "TimeoutError"
    assert f"timeout={limit} s" in out["error"]["message"]
    assert float(limit) <= out["elapsed"] < float(limit) + scaled(12), out
    assert_all_gone(pid_dir, expected=4)


# ---------------------------------------------------------------------------- over ssh


def test_ranks_over_ssh(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n127.0.0.2 slots=2\n")
    ssh = ["--hosts", str(hosts), "--ssh", FAKE_SSH, "--python", REMOTE_PYTHON]
    r, out = driver("values", *ssh)
    assert [v["x"] for v in out["values"]] == [10, 11, 12]
    assert [v["y"] for v in out["values"]] == [6.5] * 3
    assert "hello from rank 0\n" in r.stdout
    r, out = driver("raise", "--fail-rank", "2", *ssh)
    e = out["error"]
    assert e["rank"] == 2 and e["host"] == "127.0.0.2" and e["cause_is_local_class"]


# ---------------------------------------------------------------------------- bad input


def _fn():
    return 0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: dist.run(3), TypeError, "fn must be callable, got int 3"),
        (lambda: dist.run(_fn, args=5), TypeError, "args must be a tuple or list, got int"),
        (lambda: dist.run(_fn, kwargs=[1]), TypeError, "kwargs must be a dict"),
        (lambda: dist.run(_fn, nproc=0), ValueError, "nproc must be at least 1, got 0"),
        (lambda: dist.run(_fn, nproc=2.0), TypeError, "nproc must be an int, got float 2.0"),
        (lambda: dist.run(_fn, nproc=True), TypeError, "nproc must be an int, got bool"),
        (lambda: dist.run(_fn, nproc=2, hosts="h"), ValueError, "give nproc or hosts, not both"),
        (lambda: dist.run(_fn, hosts=5), TypeError, "hosts must be a hosts file path"),
        (lambda: dist.run(_fn, hosts=["a", 1]), TypeError, "hosts lines must be str"),
        (lambda: dist.run(_fn, env={"A B": "1"}), ValueError, "env key 'A B' is not"),
        (lambda: dist.run(_fn, env={"A": 1}), TypeError, "env['A'] must be a str, got int 1"),
        (lambda: dist.run(_fn, env=[("A", "1")]), TypeError, "env must be a dict"),
        (lambda: dist.run(_fn, timeout=0), ValueError, "timeout must be > 0 seconds, got 0"),
        (lambda: dist.run(_fn, timeout=float("nan")), ValueError, "timeout must be > 0"),
        (lambda: dist.run(_fn, timeout="5"), TypeError, "timeout must be a number"),
        (lambda: dist.run(_fn, kill_timeout=-1), ValueError, "kill_timeout must be >= 0"),
        (lambda: dist.run(_fn, output="rank1"), ValueError, "output must be one of rank0, all"),
        (lambda: dist.run(_fn, cwd="/no/such/dir"), ValueError, "cwd '/no/such/dir' is not"),
        (lambda: dist.run(_fn, hosts="/no/such/hosts"), ValueError, "cannot read hosts file"),
        (lambda: dist.run(_fn, hosts=["bad_host"]), ValueError, "hosts line 1: 'bad_host': bad"),
        (lambda: dist.run(_fn, hosts=[]), ValueError, "hosts lists no hosts"),
        (lambda: dist.run(_fn, hosts=["h"], ssh="/no/ssh"), ValueError, "ssh command '/no/ssh'"),
        (lambda: dist.run(_fn, (threading.Lock(),)), TypeError, "cannot be sent to the ranks"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(call, error, message):
    with pytest.raises(error, match="^run: ") as info:
        call()
    assert message in str(info.value)


# ---------------------------------------------------------------------------- pieces


class _DictStore:
    def __init__(self):
        self.data = {}

    def set(self, key, value):
        assert len(value) <= 5
        self.data[key] = value.encode() if isinstance(value, str) else bytes(value)

    def get(self, key):
        return self.data[key]

    def check(self, keys):
        return all(k in self.data for k in keys)


def test_blobs_travel_in_chunks_with_the_count_last(monkeypatch):
    monkeypatch.setattr(transport, "CHUNK", 5)
    store = _DictStore()
    for blob in (b"", b"abc", b"abcde", b"abcdefghijkl"):
        transport.put(store, f"k{len(blob)}", blob)
        assert transport.has(store, f"k{len(blob)}")
        assert transport.get(store, f"k{len(blob)}") == blob
    assert list(store.data)[-1] == "k12/count" and store.data["k12/count"] == b"3"
    assert not transport.has(store, "missing")


def test_tensors_travel_with_dtype_grad_and_class():
    weight = phalanx.nn.Parameter(phalanx.ones(2, 3))
    plain = phalanx.arange(4).float().requires_grad_(True) * 2  # not a leaf
    bf16 = phalanx.ones(3).to(phalanx.bfloat16)
    got = transport.loads(transport.dumps([weight, plain, bf16, phalanx.tensor([1, 2])]))
    assert type(got[0]) is phalanx.nn.Parameter and got[0].requires_grad
    assert got[0].tolist() == [[1.0] * 3] * 2
    assert type(got[1]) is phalanx.Tensor and got[1].requires_grad and got[1].is_leaf
    assert got[1].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert got[2].dtype == phalanx.bfloat16 and got[2].tolist() == [1.0] * 3
    assert got[3].dtype == phalanx.int64 and not got[3].requires_grad


def test_a_rank_on_another_python_version_says_so():
    rank._version_check({"python": tuple(__import__("sys").version_info[:2])})
    with pytest.raises(RuntimeError, match=r"the driver runs Python 2\.7 but this rank runs"):
        rank._version_check({"python": (2, 7)})


def test_remote_traceback_gets_the_drivers_source_lines():
    """A notebook cell's source exists only in the kernel: the rank's traceback has no source
    lines for it, and the driver fills them in from its linecache."""
    name = "<phalanx-test-cell-1>"
    linecache.cache[name] = (0, None, ["def f():\n", "    return 1 / 0\n"], name)
    try:
        tb = (
            "Traceback (most recent call last):\n"
            f'  File "{name}", line 2, in f\n'
            '  File "/rank/only.py", line 9, in g\n'
            "    known()\n"
            "ZeroDivisionError: division by zero\n"
        )
        assert api._with_source_lines(tb) == tb.replace("in f\n", "in f\n    return 1 / 0\n")
    finally:
        del linecache.cache[name]


def test_rank_error_pickles():
    e = pickle.loads(pickle.dumps(dist.RankError("boom", 3, "phone3", "Traceback...", None, "X")))
    assert (str(e), e.rank, e.host, e.remote_traceback, e.type_name) == (
        "boom", 3, "phone3", "Traceback...", "X"
    )  # fmt: skip


def test_results_keep_numpy_arrays():
    data = transport.dumps({"a": np.arange(3)})
    assert pickle.loads(data)["a"].tolist() == [0, 1, 2]


def test_interrupting_a_jupyter_kernel_stops_every_rank(tmp_path):
    """In a real kernel: rank 0's output streams into the cell, and the kernel's interrupt
    (SIGINT, what the ■ button sends) ends the cell with KeyboardInterrupt once every rank
    is gone."""
    # A test dependency of bootstrap.sh; the aarch64 run under qemu does not install it.
    KernelManager = pytest.importorskip(
        "jupyter_client", reason="needs jupyter_client (the Jupyter test stack)"
    ).KernelManager

    spec_dir = tmp_path / "jupyter" / "kernels" / "phalanx-run-test"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": PYTHON + ["-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "phalanx (test)",
        "language": "python",
        "env": {"PYTHONPATH": python_env()["PYTHONPATH"]},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    os.environ["JUPYTER_PATH"], saved = str(tmp_path / "jupyter"), os.environ.get("JUPYTER_PATH")
    try:
        km = KernelManager(kernel_name="phalanx-run-test")
        km.start_kernel()
    finally:
        if saved is None:
            del os.environ["JUPYTER_PATH"]
        else:
            os.environ["JUPYTER_PATH"] = saved
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=180)  # a loaded CI machine starts a kernel slowly
        cell = (
            "import os, subprocess, time\n"
            "import phalanx.distributed as dist\n"
            "def sleeper(pid_dir):\n"
            "    child = subprocess.Popen(['sleep', '1000'])\n"
            "    path = os.path.join(pid_dir, f'rank{dist.get_rank()}.pid')\n"
            "    with open(path + '.tmp', 'w') as f:\n"
            "        f.write(f'{os.getpid()} {child.pid}')\n"
            "    os.rename(path + '.tmp', path)\n"
            "    print('rank', dist.get_rank(), 'sleeping', flush=True)\n"
            "    time.sleep(1000)\n"
            f"dist.run(sleeper, ({str(pid_dir)!r},), nproc=2)\n"
        )
        msg_id = kc.execute(cell)
        wait_for(lambda: len(rank_pids(pid_dir)) == 4, 60, "both ranks to start")
        km.interrupt_kernel()
        streams, error = "", None
        end = time.monotonic() + 60
        while time.monotonic() < end:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if msg["msg_type"] == "stream":
                streams += content["text"]
            elif msg["msg_type"] == "error":
                error = content["ename"]
            elif msg["msg_type"] == "status" and content["execution_state"] == "idle":
                break
        assert error == "KeyboardInterrupt", (error, streams)
        assert "rank 0 sleeping\n" in streams and "rank 1" not in streams, streams
        assert_all_gone(pid_dir, expected=4)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
