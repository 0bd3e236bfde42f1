"""phalanx launch: local ranks (--nproc), ranks over ssh (--hosts, with a fake ssh that runs
the remote command here through `sh -c`, so host parsing, command construction and quoting
are exercised for real), output prefixes, failure propagation, signals, bad input.

Every launcher run that starts ranks is a subprocess bounded by a timeout; rank scripts
write their pids (and a grandchild's) to files so each test can check that nothing is left
behind, and kills whatever is in finally. Bad input is checked in-process (nothing starts).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import subprocess
import time

import pytest
from _spawn import PYTHON, alive, python_env, run_python, start_python

from phalanx.distributed import launch
from phalanx.distributed._launch.hosts import parse_hosts
from phalanx.distributed._launch.output import Console, LineSplitter
from phalanx.distributed._launch.plan import plan_ranks, route_address

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch_helpers")
LAUNCH = ["-m", "phalanx.distributed.launch"]
FAKE_SSH = shlex.join(PYTHON + [os.path.join(HELPERS, "fake_ssh.py")])
REMOTE_PYTHON = shlex.join(PYTHON)
TIMEOUT = 60  # seconds any one launcher run may take


def helper(name: str) -> str:
    return os.path.join(HELPERS, name)


def env_for_launcher(**extra) -> dict:
    env = python_env(**extra)
    env.pop("PHALANX_SSH", None)
    return env


def run_launch(args, timeout=TIMEOUT, **env):
    # (the harness keeps the progress lines' \r as they are)
    return run_python(LAUNCH + list(args), env=env_for_launcher(**env), timeout=timeout)


def rank_pids(pid_dir) -> list[int]:
    """Every pid the sleepy ranks wrote: each rank's own and its grandchild's."""
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


def kill_leftovers(pid_dir) -> None:
    for pid in rank_pids(pid_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def assert_all_gone(pid_dir, expected: int, timeout: float = 5.0) -> None:
    pids = rank_pids(pid_dir)
    assert len(pids) == expected, pids
    wait_for(lambda: not any(alive(p) for p in pids), timeout, f"processes {pids} to end")


def hosts_file(tmp_path, text: str) -> str:
    path = tmp_path / "hosts"
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------- local ranks


def test_nproc_all_reduce_with_prefixes_and_progress():
    r = run_launch(["--nproc", "3", helper("allreduce_rank.py"), "a", "b c"])
    assert r.returncode == 0, r.stderr
    for rank in range(3):
        assert f"[rank {rank}] sum=3 world=3 local={rank}/3 group=0/1 addr=-\n" in r.stdout
        assert f"[rank {rank}] args=['a', 'b c'] extra=None\n" in r.stdout
        assert f"[rank {rank}] stderr line of rank {rank}\n" in r.stderr
    # stdout is a pipe, not a terminal: rank 0's carriage-return updates are not forwarded
    # (a log would pile them up), only the line its progress bar ends with (issue 14; the
    # live updates on a terminal: test_progress.py)
    assert "\r" not in r.stdout
    assert "[rank 0] progress 2/2\n" in r.stdout
    # whole lines only: every piece of output starts with a prefix
    for piece in r.stdout.replace("\r", "\n").split("\n"):
        assert piece == "" or piece.startswith("[rank "), repr(piece)
    assert "all 3 rank(s) exited 0" in r.stderr


def test_env_module_cwd_quiet_and_log_dir(tmp_path):
    logs = tmp_path / "logs"
    r = run_launch(
        ["--nproc", "2", "--quiet", "--log-dir", str(logs), "--cwd", HELPERS]
        + ["--env", "LAUNCH_TEST_EXTRA=x y'z", "-m", "hello_rank", "--flag", "a b"]
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""  # --quiet with --log-dir: output only in files
    for rank in range(2):
        out = (logs / f"rank{rank}.stdout.log").read_text()
        assert f"RANK={rank} WORLD_SIZE=2 LOCAL_RANK={rank} MASTER_ADDR=127.0.0.1" in out
        assert "PHALANX_STORE_EXTERNAL=1" in out
        assert f"args=['--flag', 'a b'] extra=\"x y'z\" cwd={HELPERS}" in out
        assert (logs / f"rank{rank}.stderr.log").read_text() == f"err of {rank}\n"


def test_no_prefix_and_quiet():
    r = run_launch(["--nproc", "1", "--no-prefix", "--quiet", helper("hello_rank.py")])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("RANK=0 WORLD_SIZE=1 ")
    assert r.stderr == "err of 0\n"  # no banner, no summary


def test_failing_rank_stops_the_others_within_the_kill_timeout(tmp_path):
    """Rank 2 exits 3; rank 0 stops on SIGTERM, rank 1 ignores it and is SIGKILLed after
    the 1 s kill timeout; their grandchildren go too."""
    try:
        r = run_launch(
            ["--nproc", "3", "--kill-timeout", "1", helper("sleepy_rank.py"), str(tmp_path)]
            + ["--fail", "2:3", "--ignore-term", "1"]
        )
        exited_at = time.time()
        assert r.returncode == 3, r.stderr
        failed_at = float((tmp_path / "failed_at").read_text())
        assert exited_at - failed_at < 1 + 8, "the other ranks were not stopped in time"
        with open(tmp_path / "rank2.pid") as f:
            pid2 = f.read().split()[0]
        first = f"rank 2 (host 127.0.0.1, pid {pid2}) exited with code 3"
        assert f"phalanx launch: {first}\n" in r.stderr
        summary = r.stderr[r.stderr.index("job failed") :]
        lines = summary.splitlines()
        assert lines[1].endswith(f"{first.replace(') exited', '): exited')}  <- first failure")
        assert "rank 0 " in summary and "stopped by the launcher (SIGTERM)" in summary
        assert "1 s kill timeout; the launcher killed it (SIGKILL)" in summary
        assert lines[-1] == "phalanx launch: exit status 3"
        assert_all_gone(tmp_path, expected=6)
    finally:
        kill_leftovers(tmp_path)


def test_rank_killed_by_a_signal(tmp_path):
    script = tmp_path / "suicide.py"
    script.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    r = run_launch(["--nproc", "1", str(script)])
    assert r.returncode == 128 + signal.SIGKILL, r.stderr
    assert "rank 0 (host 127.0.0.1, pid " in r.stderr
    assert ") killed by SIGKILL\n" in r.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_the_launcher_stops_every_rank(tmp_path, sig, code):
    launcher = start_python(
        LAUNCH
        + ["--nproc", "2", "--kill-timeout", "1", helper("sleepy_rank.py"), str(tmp_path)]
        + ["--ignore-term", "1"],
        env=env_for_launcher(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(rank_pids(tmp_path)) == 4, TIMEOUT, "both ranks to start")
        launcher.send_signal(sig)
        out, err = launcher.communicate(timeout=TIMEOUT)
        assert launcher.returncode == code, err
        assert f"got {signal.Signals(sig).name}: stopping every rank" in err
        assert "SIGKILL" in err  # rank 1 ignored SIGTERM
        assert_all_gone(tmp_path, expected=4)
    finally:
        launcher.kill()
        launcher.communicate()
        kill_leftovers(tmp_path)


def test_second_sigint_kills_at_once(tmp_path):
    launcher = start_python(
        LAUNCH
        + ["--kill-timeout", "60", helper("sleepy_rank.py"), str(tmp_path), "--ignore-term", "0"],
        env=env_for_launcher(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(rank_pids(tmp_path)) == 2, TIMEOUT, "the rank to start")
        launcher.send_signal(signal.SIGINT)
        time.sleep(0.5)  # two separate signals, not one coalesced pending signal
        launcher.send_signal(signal.SIGINT)
        out, err = launcher.communicate(timeout=20)  # well before the 60 s kill timeout
        assert launcher.returncode == 130, err
        assert "second SIGINT: killing every rank now" in err
        assert_all_gone(tmp_path, expected=2)
    finally:
        launcher.kill()
        launcher.communicate()
        kill_leftovers(tmp_path)


def test_max_time(tmp_path):
    try:
        r = run_launch(["--max-time", "1", helper("sleepy_rank.py"), str(tmp_path)])
        assert r.returncode == 124, r.stderr
        assert "ran longer than --max-time 1 s" in r.stderr
        assert_all_gone(tmp_path, expected=2)
    finally:
        kill_leftovers(tmp_path)


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_ranks_die_with_a_killed_launcher(tmp_path, where):
    """SIGKILL, as the OOM killer sends it: nothing the job started may outlive the launcher,
    neither the ranks nor the processes they started. Local ranks: each rank's guard (boot.py)
    sees the launcher's end of its pipe close and kills the rank's process group; ranks over
    ssh see their session's stdin close, and their host's watchdog kills the group."""
    if where == "local":
        place = ["--nproc", "2", helper("sleepy_rank.py")]
    else:
        hosts = hosts_file(tmp_path, "127.0.0.1:2\n")
        place = ["--hosts", hosts, "--ssh", FAKE_SSH, "--python", REMOTE_PYTHON]
        place += ["--cwd", HELPERS, "--kill-timeout", "1", "sleepy_rank.py"]
    launcher = start_python(
        LAUNCH + place + [str(tmp_path)],
        env=env_for_launcher(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(rank_pids(tmp_path)) == 4, TIMEOUT, "both ranks to start")
        launcher.kill()
        launcher.wait(TIMEOUT)
        assert_all_gone(tmp_path, expected=4)  # both ranks and both grandchildren
    finally:
        launcher.kill()
        launcher.wait()
        kill_leftovers(tmp_path)


def test_a_rank_has_no_child_it_did_not_start(tmp_path):
    """The guard that boot.py leaves beside a local rank is not the rank's child: a rank
    waiting for any child must not collect it (and so stop guarding)."""
    script = tmp_path / "wait_any.py"
    script.write_text(
        "import os\n"
        "try:\n"
        "    print('collected', os.wait())\n"
        "except ChildProcessError:\n"
        "    print('no children')\n"
    )
    r = run_launch(["--nproc", "1", "--no-prefix", str(script)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "no children\n"


# --------------------------------------------------------------------------- ranks over ssh


def test_hosts_over_fake_ssh(tmp_path):
    hosts = hosts_file(
        tmp_path, "# two hosts\n127.0.0.1:2   # two slots\n\ntester@127.0.0.2 port=2222\n"
    )
    ssh_log = tmp_path / "ssh.log"
    args = ["it's", "$(echo pwned)", "; exit 1", "a\nb"]
    r = run_launch(
        ["--hosts", hosts, "--ssh", FAKE_SSH, "--python", REMOTE_PYTHON, "--cwd", HELPERS]
        + ["--env", "LAUNCH_TEST_EXTRA=x y'z $HOME", "allreduce_rank.py"]
        + args,
        FAKE_SSH_LOG=str(ssh_log),
    )
    assert r.returncode == 0, r.stderr
    where = {0: ("127.0.0.1", "0/2", "0/2"), 1: ("127.0.0.1", "1/2", "0/2")}
    where[2] = ("127.0.0.2", "0/1", "1/2")
    for rank, (host, local, group) in where.items():
        prefix = f"[rank {rank} {host}] "
        assert f"{prefix}sum=3 world=3 local={local} group={group} addr={host}\n" in r.stdout
        assert f'{prefix}args={args!r} extra="x y\'z $HOME"\n' in r.stdout
        assert f"{prefix}stderr line of rank {rank}\n" in r.stderr
    calls = [json.loads(line) for line in ssh_log.read_text().splitlines()]
    dests = sorted(c["destination"] for c in calls)
    assert dests == ["127.0.0.1", "127.0.0.1", "tester@127.0.0.2"]
    for c in calls:
        assert ("2222" in c["options"]) == (c["destination"] == "tester@127.0.0.2")
        assert "BatchMode=yes" in c["options"]


def test_remote_failure_stops_the_remote_ranks(tmp_path):
    """Rank 1 exits 3; the launcher closes the other ssh sessions, whose watchdogs SIGTERM
    their ranks (rank 0 ignores it and is SIGKILLed on its host after the kill timeout)."""
    hosts = hosts_file(tmp_path, "127.0.0.1:2\n127.0.0.2\n")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    try:
        r = run_launch(
            ["--hosts", hosts, "--ssh", FAKE_SSH, "--python", REMOTE_PYTHON, "--cwd", HELPERS]
            + ["--kill-timeout", "1", "sleepy_rank.py", str(pid_dir)]
            + ["--fail", "1:3", "--ignore-term", "0"]
        )
        assert r.returncode == 3, r.stderr
        assert "phalanx launch: rank 1 (host 127.0.0.1, ssh pid " in r.stderr
        summary = r.stderr[r.stderr.index("job failed") :]
        assert "rank 2 (host 127.0.0.2, ssh pid" in summary
        assert "stopped by the launcher (SIGTERM)" in summary
        assert "killed (SIGKILL) on its host after the 1 s kill timeout" in summary
        assert_all_gone(pid_dir, expected=6)
    finally:
        kill_leftovers(pid_dir)


def test_ssh_failure_is_reported(tmp_path):
    hosts = hosts_file(tmp_path, "127.0.0.1\n")
    r = run_launch(["--hosts", hosts, "--ssh", "sh -c 'exit 255' sh", "train.py"])
    assert r.returncode == 255
    assert "rank 0 (host 127.0.0.1, ssh pid " in r.stderr
    assert "exited with code 255 (ssh could not connect or authenticate" in r.stderr


# --------------------------------------------------------------------------- bad input


BAD_HOSTS = [
    ("host:0", "line 1: 'host:0': slots must be an integer from 1"),
    ("host:two", "slots must be an integer from 1"),
    ("a b", "unexpected 'b'"),
    ("bad_host!", "bad host name 'bad_host!'"),
    ("@host", "bad user name ''"),
    ("host port=99999", "port must be an integer from 1 to 65535"),
    ("host addr=phone", "addr must be an IPv4 address"),
    ("host colour=red", "unknown field 'colour'"),
    ("# fine\nhost:2 slots=3", "line 2: 'host:2 slots=3': slots given twice"),
    ("# only a comment\n\n", "lists no hosts"),
    # RFC 1123 names: the resolver's UnicodeError for a long label used to escape (exit 1)
    ("a" * 64 + ".example", "label 'aaaaaaaaaaaaaaaaaaaa...' has 64 characters, at most 63"),
    ("u@" + "b" * 64, "has 64 characters, at most 63 allowed"),
    (".".join(["c" * 50] * 5), "254 characters, at most 253 allowed"),
    ("# ok\nhost\n-host", "line 3: '-host': bad host name '-host'"),
    ("host-:2", "bad host name 'host-'"),
    ("a..b", "bad host name 'a..b'"),
    ("b\u00fccher.de", "bad host name 'b\u00fccher.de'"),
    ("999.1.1.1", "bad host name '999.1.1.1': not a valid IPv4 address"),
    ("", "lists no hosts"),
]


@pytest.mark.parametrize("text, message", BAD_HOSTS)
def test_bad_hosts_file(tmp_path, capsys, text, message):
    marker = tmp_path / "started"
    hosts = hosts_file(tmp_path, text)
    code = launch.main(["--hosts", hosts, "--ssh", "true", "touch_marker.py", str(marker)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not marker.exists()


def test_longest_host_names_are_accepted():
    label = "a" * 63
    longest = ".".join([label, label, label, "b" * 61])  # 253 characters
    entries = parse_hosts(f"{label}.example:2\nu@{longest}\n10.0.0.1\nx-1.y2\n")
    assert [e.host for e in entries] == [f"{label}.example", longest, "10.0.0.1", "x-1.y2"]


def test_malformed_host_line_exits_2_without_a_traceback(tmp_path):
    hosts = hosts_file(tmp_path, "a" * 64 + ".example\n")
    r = run_launch(["--hosts", hosts, "--ssh", "true", "x.py"])
    assert r.returncode == 2, r.stderr
    assert "line 1:" in r.stderr and "at most 63 allowed" in r.stderr
    assert "Traceback" not in r.stderr


def _marker_script(tmp_path):
    script = tmp_path / "mark.py"
    script.write_text(f"open({str(tmp_path / 'started')!r}, 'w').close()\n")
    return str(script)


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: script.py|module"),
        (["missing.py"], "script 'missing.py' not found"),
        (["--nproc", "0", "SCRIPT"], "--nproc must be at least 1, got 0"),
        (["--nproc", "two", "SCRIPT"], "argument --nproc: invalid int value: 'two'"),
        (
            ["--nproc", "2", "--hosts", "h", "SCRIPT"],
            "argument --hosts: not allowed with argument --nproc",
        ),
        (["--hosts", "/nonexistent/hosts", "SCRIPT"], "cannot read hosts file"),
        (["--env", "NOVALUE", "SCRIPT"], "--env expects KEY=VALUE"),
        (["--env", "1X=2", "SCRIPT"], "--env expects KEY=VALUE"),
        (["--kill-timeout", "-1", "SCRIPT"], "--kill-timeout must be >= 0"),
        (["--max-time", "0", "SCRIPT"], "--max-time must be > 0"),
        (["--master-port", "70000", "SCRIPT"], "--master-port must be from 0 to 65535"),
        (["--cwd", "/nonexistent", "SCRIPT"], "--cwd '/nonexistent' is not a directory"),
        (["--hosts", "HOSTS", "--ssh", "no-such-ssh-x", "SCRIPT"], "ssh command 'no-such"),
        (
            ["--hosts", "HOSTS", "--ssh-opts", "-i 'key", "SCRIPT"],
            '--ssh-opts "-i \'key": No closing',
        ),
    ],
)
def test_bad_command_line(tmp_path, capsys, argv, message):
    script = _marker_script(tmp_path)
    hosts = hosts_file(tmp_path, "127.0.0.1\n")
    argv = [script if a == "SCRIPT" else hosts if a == "HOSTS" else a for a in argv]
    assert launch.main(argv) == 2
    err = capsys.readouterr().err
    assert f"phalanx launch: error: {message}" in err
    assert not (tmp_path / "started").exists()


def test_command_line_entry_points():
    """`python -m phalanx launch` and `python -m phalanx.distributed.launch`."""
    r = run_python(["-m", "phalanx", "launch", "--nproc", "0", "x.py"], env=env_for_launcher())
    assert r.returncode == 2 and "--nproc must be at least 1" in r.stderr, r.stderr
    r = run_python(LAUNCH + ["--help"], env=env_for_launcher())
    assert r.returncode == 0 and "usage: phalanx launch" in r.stdout
    assert "--kill-timeout" in r.stdout and "Exit status:" in r.stdout


def test_cli_dispatch(capsys):
    from phalanx import cli

    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert cli.main(["--help"]) == 0
    assert "launch" in capsys.readouterr().out


# --------------------------------------------------------------------------- pieces


def test_parse_hosts():
    entries = parse_hosts(
        "# rack\n192.168.1.20:4\nu0_a123@192.168.1.21  # one slot\n\n"
        "phone3 slots=2 port=8022 addr=10.0.0.3\n"
    )
    assert [(e.destination, e.slots, e.port, e.addr) for e in entries] == [
        ("192.168.1.20", 4, None, "192.168.1.20"),
        ("u0_a123@192.168.1.21", 1, None, "192.168.1.21"),
        ("phone3", 2, 8022, "10.0.0.3"),
    ]
    specs = plan_ranks(None, parse_hosts("a:2\nb\na\n"))
    assert [
        (s.rank, s.host.host, s.local_rank, s.local_world_size, s.group_rank) for s in specs
    ] == [
        (0, "a", 0, 3, 0),
        (1, "a", 1, 3, 0),
        (2, "b", 0, 1, 1),
        (3, "a", 2, 3, 0),
    ]


def test_line_splitter():
    s = LineSplitter()
    assert s.feed(b"hel") == []  # a partial line waits
    assert s.feed(b"lo\nwor") == [("line", b"hello")]
    assert s.feed(b"ld\r\n") == [("line", b"world")]
    # a progress bar: each update shows at once, the last one ends as a line
    assert s.feed(b"\r 10%") == [("progress", b" 10%")]
    assert s.feed(b"\r 50%\r") == [("progress", b" 50%")]  # trailing \r held back
    assert s.feed(b"\n") == [("line", b" 50%")]  # it was \r\n: a line after all
    assert s.feed(b"\r100%\n") == [("line", b"100%")]
    assert s.feed(b"\r 1%\r 2%\r\n") == [("progress", b" 1%"), ("line", b" 2%")]
    assert s.feed(b"tail") == []
    assert s.finish() == [("line", b"tail")]
    quiet = LineSplitter(progress=False)
    assert quiet.feed(b"\r10%\r20%") == []
    assert quiet.feed(b"\n") == [("line", b"20%")]
    long = LineSplitter(limit=4)
    assert long.feed(b"abcdefgh") == [("line", b"abcdefgh")]


def test_console_progress_lines():
    out, err = io.BytesIO(), io.BytesIO()
    c = Console(out, err)
    c.emit(0, out, b"[rank 0] ", "progress", b"10%")
    c.emit(0, out, b"[rank 0] ", "progress", b"20%")
    c.emit(1, out, b"[rank 1] ", "line", b"hello")  # ends rank 0's open line first
    c.emit(0, out, b"[rank 0] ", "progress", b"30%")
    c.emit(0, out, b"[rank 0] ", "line", b"done")  # replaces its own progress line
    c.message("bye")
    assert out.getvalue() == (
        b"\r[rank 0] 10%\r[rank 0] 20%\n[rank 1] hello\n\r[rank 0] 30%\r[rank 0] done\n"
    )
    assert err.getvalue() == b"phalanx launch: bye\n"


def test_master_address_for_hosts_is_the_route_not_the_hostname():
    assert route_address(parse_hosts("127.0.0.2:2\n")) == "127.0.0.1"
