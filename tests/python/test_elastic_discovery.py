"""`phalanx launch --elastic --hosts FILE` watches FILE: a slot added during the run starts a
rank that joins at the next commit (with the others' parameters); a removed one stops nothing,
and a file caught mid-edit is ignored until it parses (discovery.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading

from _elastic_job import HELPER, load, same_params
from _spawn import PYTHON, _kill_group, python_env, start_python

from phalanx.distributed._launch.discovery import HostsWatcher
from phalanx.distributed._launch.hosts import parse_hosts

HELPERS = os.path.dirname(HELPER)
FAKE_SSH = shlex.join(PYTHON + [os.path.join(HELPERS, "fake_ssh.py")])
BOUND = 120  # seconds for the whole launcher run


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_watcher_reports_added_slots_and_ignores_removals_and_bad_files(tmp_path):
    path = str(tmp_path / "hosts")
    write(path, "a:2\n")
    w = HostsWatcher(path, parse_hosts("a:2\n"), interval=1.0)
    assert w.poll(0.0) == ([], [])  # unchanged
    write(path, "a:3\nu@b port=22 switch=1\n")
    assert w.poll(0.5) == ([], [])  # not yet a second later
    added, messages = w.poll(1.0)
    assert [(h.destination, h.slots, h.port, h.switch) for h in added] == [
        ("a", 1, None, None),
        ("u@b", 1, 22, 1),
    ]
    assert messages == []
    write(path, "a:3\nu@b port=22 oops\n")
    added, messages = w.poll(2.0)
    assert (
        added == [] and "line 2" in messages[0] and "ignored until the file parses" in messages[0]
    )
    write(path, "a:1\n")
    added, messages = w.poll(3.0)
    assert added == []
    assert "2 slot(s) of a removed" in messages[0] and "1 slot(s) of u@b removed" in messages[1]
    write(path, "a:1\nu@b port=22\n")  # a host that comes back starts again
    added, _ = w.poll(4.0)
    assert [(h.destination, h.slots) for h in added] == [("u@b", 1)]


def launch_and_add_a_host(out: str, steps: int, *launch_args: str) -> tuple[int, str]:
    """Starts an elastic job on 127.0.0.1:2 (fake ssh), appends a host to its hosts file once
    the job trains, and returns the launcher's exit status and output."""
    hosts = os.path.join(out, "hosts")
    write(hosts, "127.0.0.1:2\n")
    cmd = ["-m", "phalanx.distributed.launch", "--elastic", "--hosts", hosts, "--ssh", FAKE_SSH]
    cmd += ["--python", shlex.join(PYTHON), "--cwd", HELPERS, *launch_args]
    cmd += ["--env", "PHALANX_HEARTBEAT_INTERVAL=0.5", "--env", "PHALANX_HEARTBEAT_TIMEOUT=10"]
    cmd += [HELPER, out, "--steps", str(steps), "--step-sleep", "0.1"]
    env = python_env()
    env.pop("PHALANX_SSH", None)
    proc = start_python(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines, training = [], threading.Event()

    def read():
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            lines.append(line)
            if "gen 0 step 4 " in line:
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert training.wait(60), "".join(lines)
        with open(hosts, "a") as f:
            f.write("127.0.0.2 addr=127.0.0.2\n")
        code = proc.wait(timeout=BOUND)
        reader.join(10)
    except BaseException:  # a timeout or a failed wait: nothing of the job may stay behind
        _kill_group(proc)
        raise
    return code, "".join(lines)


def test_a_host_added_to_the_hostfile_joins_the_running_job(tmp_path):
    out, steps = str(tmp_path), 100
    code, text = launch_and_add_a_host(out, steps)  # no --max-nproc: added hosts join
    assert code == 0, text
    assert "1 slot(s) added on 127.0.0.2; member(s) [2] start and join the job" in text, text
    assert "joined [2]" in text, text
    finals = [load(os.path.join(out, f"final_m{m}.pkl")) for m in (0, 2)]
    assert [f["step"] for f in finals] == [steps, steps], text
    assert [f["world"] for f in finals] == [3, 3], text
    assert same_params(finals[0], finals[1]), "the joined rank's parameters differ from rank 0's"


def test_an_added_host_waits_for_max_nproc(tmp_path):
    # --max-nproc 2, two ranks running: the added host is announced, not started.
    code, text = launch_and_add_a_host(str(tmp_path), 40, "--max-nproc", "2")
    assert code == 0, text
    assert "member 2 waits: --max-nproc 2 ranks are running" in text, text
    assert "started member 2" not in text, text
    assert load(os.path.join(str(tmp_path), "final_m0.pkl"))["world"] == 2, text


def test_no_member_starts_once_the_job_completed_on_a_rank():
    """A waiting member (--max-nproc, or a replacement due) is dropped once any rank finished
    the job: started after rank 0 completed, while rank 1 was still exiting, it had made the
    launcher report a completed job as failed (no member of the generation left)."""
    from types import SimpleNamespace

    from phalanx.distributed._launch.elastic import ElasticLauncher

    launcher = object.__new__(ElasticLauncher)
    done, exiting = SimpleNamespace(code=0), SimpleNamespace(code=None)
    spec = SimpleNamespace(rank=2)
    messages, started = [], []
    launcher.__dict__.update(
        ranks=[done, exiting],
        pending=[(0.0, spec)],
        joined=[],
        watcher=None,
        stop_started=None,
        capped=False,
        args=SimpleNamespace(max_nproc=2),
        info=messages.append,
        spawn=started.append,
        _remove_stale=lambda: None,
    )
    launcher.tick(1.0)
    assert started == [] and launcher.pending == [], messages
    assert messages == ["member 2 is not started: the job completed"]
