"""phalanx.utils.progress: tqdm only on a terminal, whole lines every N seconds elsewhere; the
launcher tells its ranks which (PHALANX_PROGRESS); the Fashion-MNIST example's log under
`--log-dir` holds lines, not carriage-return updates (issue 14)."""

from __future__ import annotations

import io
import os
import pty
import subprocess

import pytest
from _spawn import python_env, run_python, start_python

from phalanx.utils import progress as P

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch_helpers")


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(P, "_clock", c)
    monkeypatch.delenv("PHALANX_PROGRESS", raising=False)
    monkeypatch.delenv("PHALANX_PROGRESS_INTERVAL", raising=False)
    return c


def test_lines_every_interval_and_at_the_end(clock):
    out = io.StringIO()
    bar = P.progress(range(100), desc="epoch 1/2", unit="batch", interval=30, file=out)
    assert isinstance(bar, P.LineProgress) and len(bar) == 100
    for i in bar:
        clock.now += 1.0  # one second per batch
        bar.set_postfix(loss=f"{1 / (i + 1):.2f}")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines == [
        "epoch 1/2: 30/100 batch (30%), 30.0 s, 1.0 batch/s, loss=0.03",
        "epoch 1/2: 60/100 batch (60%), 60.0 s, 1.0 batch/s, loss=0.02",
        "epoch 1/2: 90/100 batch (90%), 90.0 s, 1.0 batch/s, loss=0.01",
        "epoch 1/2: 100/100 batch in 100.0 s (1.0 batch/s), loss=0.01",
    ]


def test_a_loop_left_early_still_ends_with_a_line(clock):
    out = io.StringIO()
    items = (x for x in range(10))  # no len()
    bar = P.progress(items, interval=5, file=out)
    for i in bar:
        clock.now += 1.0
        if i == 2:
            break
    bar.close()
    # items count once the loop body has finished with them, as tqdm counts: 2 of 3
    assert out.getvalue() == "2 it in 3.0 s (0.7 it/s)\n"


def test_the_interval_comes_from_the_environment(clock, monkeypatch):
    monkeypatch.setenv("PHALANX_PROGRESS_INTERVAL", "0")
    out = io.StringIO()
    for _ in P.progress(range(3), desc="d", file=out):
        clock.now += 1.0
    assert len(out.getvalue().splitlines()) == 4  # every item, then the end
    monkeypatch.setenv("PHALANX_PROGRESS_INTERVAL", "soon")
    with pytest.raises(
        ValueError, match="PHALANX_PROGRESS_INTERVAL must be seconds >= 0, got 'soon'"
    ):
        P.progress(range(3), file=out)
    with pytest.raises(ValueError, match="interval must be seconds >= 0, got -1"):
        P.progress(range(3), interval=-1, file=out)


def test_tqdm_only_on_a_terminal(clock, monkeypatch):
    tqdm = pytest.importorskip("tqdm").tqdm
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        bar = P.progress(range(3), file=tty)
        assert isinstance(bar, tqdm)
        bar.close()
        monkeypatch.setenv("PHALANX_PROGRESS", "lines")  # the launcher's word wins
        assert isinstance(P.progress(range(3), file=tty), P.LineProgress)
    os.close(master)
    assert isinstance(P.progress(range(3), file=io.StringIO()), P.LineProgress)
    monkeypatch.setenv("PHALANX_PROGRESS", "bar")
    assert isinstance(P.progress(range(3), file=io.StringIO()), tqdm)
    monkeypatch.setenv("PHALANX_PROGRESS", "fancy")
    with pytest.raises(ValueError, match="PHALANX_PROGRESS must be one of bar, lines; got 'fancy'"):
        P.progress(range(3))


# ---------------------------------------------------------------------------- the launcher


def _launch_env(**extra):
    env = python_env()
    env.pop("PHALANX_PROGRESS", None)  # the launcher decides unless a test says
    env.update(extra)
    return env


def _mode_script(tmp_path) -> str:
    path = tmp_path / "mode.py"
    path.write_text("import os\nprint('mode', os.environ['PHALANX_PROGRESS'])\n")
    return str(path)


def test_the_launcher_asks_for_lines_when_logging_or_piped(tmp_path):
    script = _mode_script(tmp_path)
    launch = ["-m", "phalanx.distributed.launch", "--nproc", "1"]
    r = run_python(launch + [script], env=_launch_env())  # stdout is a pipe
    assert "mode lines" in r.stdout, r.stderr
    r = run_python(launch + [script], env=_launch_env(PHALANX_PROGRESS="bar"))
    assert "mode bar" in r.stdout, r.stderr


def _launch_on_a_terminal(args) -> bytes:
    """What the launcher writes to its stdout when that is a terminal (a pty)."""
    master, slave = pty.openpty()
    p = start_python(
        ["-m", "phalanx.distributed.launch", *args],
        env=_launch_env(),
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    out = b""
    try:
        p.wait(timeout=60)
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed, all is read
                break
            if not chunk:
                break
            out += chunk
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return out


def test_the_launcher_asks_for_a_bar_on_a_terminal_without_log_dir(tmp_path):
    script = _mode_script(tmp_path)
    out = _launch_on_a_terminal(["--nproc", "1", script])
    assert b"mode bar" in out, out
    out = _launch_on_a_terminal(["--nproc", "1", "--log-dir", str(tmp_path / "logs"), script])
    assert b"mode lines" in out, out


def test_the_launcher_forwards_live_updates_only_to_a_terminal(tmp_path):
    script = tmp_path / "bar.py"
    script.write_text(
        "import sys, time\n"
        "for i in range(3):\n"
        "    sys.stdout.write(f'\\rstep {i}'); sys.stdout.flush(); time.sleep(0.2)\n"
        "print()\n"
    )
    out = _launch_on_a_terminal(["--nproc", "1", str(script)])
    assert b"\r[rank 0] step 0" in out and b"\r[rank 0] step 1" in out, out
    r = run_python(["-m", "phalanx.distributed.launch", "--nproc", "1", str(script)])
    assert r.stdout == "[rank 0] step 2\n", repr(r.stdout)


def test_the_example_logs_lines_not_carriage_returns(tmp_path):
    """`make demo`-like run with --log-dir: the progress is a few whole lines per epoch."""
    logs = tmp_path / "logs"
    r = run_python(
        ["-m", "phalanx.distributed.launch", "--nproc", "2", "--log-dir", str(logs)]
        + ["examples/fashion_mnist.py", "--epochs", "1", "--limit-train", "256"],
        env=_launch_env(PHALANX_PROGRESS_INTERVAL="0.5"),
        cwd=ROOT,
        timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    log = (logs / "rank0.stdout.log").read_bytes()
    assert b"\r" not in log and b"\r" not in r.stdout.encode()
    assert b"epoch 1/1: 4/4 batch in " in log, log  # 256 images, 2 ranks x 32 a batch
    assert b"test accuracy:" in log
