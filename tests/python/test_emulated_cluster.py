"""The emulated phone cluster (phalanx.distributed.emulate): phones are made and removed
(also after a failing test, after SIGINT/SIGTERM of their owner, and as leftovers of a
SIGKILLed owner), a link's rate is what tc was told, a CPU quota limits a busy loop and a
change takes effect mid-run, a memory cap kills the process going over it and says so, a
DDP job runs through `phalanx launch` on 3 phones, and `phalanx cluster` runs a script from
the shell. Needs root, iproute2 and the cgroup v1 cpu/memory controllers: elsewhere these
tests skip, naming the missing capability; bad arguments are checked everywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from _spawn import alive, run_python, start_python

from phalanx.distributed.emulate import (
    MissingCapability,
    PhoneCluster,
    _cgroups,
    missing_capability,
)
from phalanx.distributed.emulate._netns import ip

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCH_HELPERS = os.path.join(HERE, "launch_helpers")
MISSING = missing_capability()
needs_phones = pytest.mark.skipif(MISSING is not None, reason=f"no emulated phones: {MISSING}")
BARE = [sys.executable, "-I", "-S"]  # helpers that need no phalanx start faster


def namespaces() -> str:
    return ip("netns", "list", check=False).stdout


def assert_gone(names, cgroups, pids=(), timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while True:
        listed = namespaces()
        left = [n for n in names if n in listed] + [c for c in cgroups if os.path.exists(c)]
        left += [f"pid {p}" for p in pids if alive(p)]
        if not left or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert not left, f"left behind: {left}"


def phone_run(c: PhoneCluster, i: int, code: str, timeout: float = 30) -> subprocess.Popen:
    return subprocess.Popen(
        c.prefix(i) + BARE + ["-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"phones": 0}, "phones=0 must be an int within"),
        ({"phones": 2, "cpu": [0.5]}, r"cpu=\[0.5\] has 1 entries for 2 phones"),
        ({"phones": 2, "cpu": 0.001}, r"cpu=0.001 must be within \[0.01"),
        ({"phones": 2, "cpu": "fast"}, "cpu='fast' is not a number of cores"),
        ({"phones": 2, "link": "100mbps"}, "link='100mbps' is not a link rate"),
        ({"phones": 2, "link": "1gbit,fast"}, r"link\[1\]='fast' is not a link rate"),
        ({"phones": 2, "mem": "1Q"}, "mem='1Q' is not a memory size"),
        ({"phones": 2, "mem": "1k"}, "mem='1k' must be at least 4M"),
        ({"phones": 2, "latency": "soon"}, "latency='soon' is not a duration"),
        ({"phones": 2, "burst": "-5"}, "burst='-5' is not a size in bytes"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PhoneCluster(kwargs.pop("phones"), **kwargs)


def test_without_root_the_error_names_the_capability(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(MissingCapability, match="network namespaces need root") as e:
        PhoneCluster(2)
    assert "this process runs as uid 1000" in e.value.capability


@pytest.mark.skipif(os.geteuid() != 0, reason="the cgroup check comes after the root check")
def test_without_cgroups_the_error_names_the_controller(monkeypatch, tmp_path):
    monkeypatch.setattr(_cgroups, "ROOT", str(tmp_path))
    with pytest.raises(MissingCapability, match="the cgroup v1 `cpu` controller is not mounted"):
        PhoneCluster(2)
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cgroup.procs").write_text("")
    with pytest.raises(MissingCapability, match="the cgroup v1 `memory` controller"):
        PhoneCluster(2, mem="1G")


def test_missing_capability_is_an_error_with_the_reason():
    e = MissingCapability("the cgroup v1 `cpu` controller is not mounted")
    assert "cannot emulate phones here: the cgroup v1 `cpu`" in str(e)
    assert e.capability.startswith("the cgroup v1")


# --------------------------------------------------------------------------- lifecycle


@needs_phones
def test_phones_are_made_as_asked_and_removed():
    with PhoneCluster(3, cpu=[0.6, None, 0.15], link="1gbit,100mbit,none", mem="300M") as c:
        listed = namespaces()
        assert all(n in listed for n in c.names + [c.net.bridge_ns])
        quotas = [g.cpu.get("cpu.cfs_quota_us").strip() for g in c.groups]
        periods = [g.cpu.get("cpu.cfs_period_us").strip() for g in c.groups]
        assert quotas[1] == "-1"  # 2 ms of run time per period of 2 ms / cores
        assert (quotas[0], periods[0]) == ("2000", "3333")
        assert (quotas[2], periods[2]) == ("2000", "13333")
        assert [int(g.memory.get("memory.limit_in_bytes")) for g in c.groups] == [300 << 20] * 3
        assert "rate 1Gbit" in c.net.qdisc(0) and "rate 100Mbit" in c.net.qdisc(1)
        assert "tbf" not in c.net.qdisc(2)
        with open(c.hostfile) as f:
            hosts = [line.split() for line in f if not line.startswith("#")]
        assert hosts == [[n, f"addr={a}"] for n, a in zip(c.names, c.addrs)]
        # A phone reaches the others and the bridge (where the launcher runs): a connection
        # to a closed port is refused (an unreachable address would time out instead).
        probe = "import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], 9), 5)\n"
        probe += "except ConnectionRefusedError:\n    print('refused')\n"
        for target in (c.addrs[2], c.master_addr):
            d = subprocess.run(
                c.net.exec_prefix(0) + BARE + ["-c", probe, target],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert d.stdout == "refused\n", (target, d.stdout, d.stderr)
        made = c.names + [c.net.bridge_ns], [g.path for p in c.groups for g in p.groups]
    assert_gone(*made)


@needs_phones
def test_a_failing_test_still_removes_phones_and_their_processes():
    with pytest.raises(ZeroDivisionError):
        with PhoneCluster(2, cpu=0.3, mem="128M") as c:
            p = phone_run(c, 1, "import time; print('up', flush=True); time.sleep(1000)")
            assert p.stdout.readline() == "up\n"
            assert c.pids(1) == [p.pid]
            made = c.names + [c.net.bridge_ns], [g.path for q in c.groups for g in q.groups]
            raise ZeroDivisionError("the test fails here")
    assert p.wait(10) == -signal.SIGKILL
    assert_gone(*made)


def _start_owner(tmp_path):
    out, pid_dir = tmp_path / "made.json", tmp_path / "pids"
    pid_dir.mkdir()
    owner = start_python(
        [os.path.join(HERE, "cluster_helpers", "owner.py"), str(out), str(pid_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # SIGINT as an interactive owner has it: a suite started in the background (nohup,
        # `cmd &` in a script) inherits it ignored, and an ignoring owner rightly ignores it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    end = time.monotonic() + 90
    while not out.exists():
        if owner.poll() is not None or time.monotonic() > end:
            owner.kill()
            raise AssertionError(f"owner failed: {owner.communicate()}")
        time.sleep(0.05)
    made = json.loads(out.read_text())
    ranks = []
    for name in os.listdir(pid_dir):
        ranks += [int(p) for p in (pid_dir / name).read_text().split()]
    return owner, made, ranks


@needs_phones
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signalled_owner_removes_everything(tmp_path, sig):
    owner, made, ranks = _start_owner(tmp_path)
    try:
        assert len(ranks) == 4 and all(alive(p) for p in ranks)  # 2 ranks + a child each
        os.kill(owner.pid, sig)
        owner.wait(30)
        assert_gone(made["names"], made["cgroups"], ranks + [made["launcher"]])
    finally:
        for pid in [owner.pid, made.get("launcher", 0)] + ranks:
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)


@needs_phones
def test_leftovers_of_a_killed_owner_are_swept_by_the_next_cluster(tmp_path):
    owner, made, ranks = _start_owner(tmp_path)
    try:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        # The launcher has a parent-death signal: the job stops with its owner...
        assert_gone([], [], ranks + [made["launcher"]], timeout=30)
        listed = namespaces()
        assert all(n in listed for n in made["names"])  # ...but namespaces stay behind...
        with PhoneCluster(1):  # ...until the next cluster starts
            assert_gone(made["names"], made["cgroups"], ranks + [made["launcher"]])
    finally:
        for pid in [made["launcher"]] + ranks:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- caps

RECEIVER = """
import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", 5201)); s.listen(1)
print("listening", flush=True)
conn, _ = s.accept(); got = 0; t0 = None
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    if t0 is None:
        t0 = time.monotonic()
    got += len(data)
print(got, time.monotonic() - t0, flush=True)
"""
SENDER = """
import socket, sys
s = socket.create_connection((sys.argv[1], 5201), timeout=30)
s.sendall(bytes(int(sys.argv[2]))); s.close()
"""


@needs_phones
def test_link_rate_is_limited_to_the_tbf_rate():
    rate = 20e6  # bits/s: 2.5 MB/s, a rate this machine sustains under any load
    size = 3_000_000
    with PhoneCluster(2, link=["20mbit", "1gbit"]) as c:
        recv = phone_run(c, 1, RECEIVER)
        assert recv.stdout.readline() == "listening\n"
        send = subprocess.run(
            c.prefix(0) + BARE + ["-c", SENDER, c.addrs[1], str(size)], timeout=60
        )
        assert send.returncode == 0
        got, seconds = recv.stdout.readline().split()
        recv.wait(10)
    measured = int(got) * 8 / float(seconds)
    assert int(got) == size
    assert 0.6 * rate <= measured <= 1.05 * rate, f"{measured / 1e6:.1f} Mbit/s over a 20mbit link"


BUSY = """
import sys, time
mark, cpu0 = time.monotonic(), time.process_time()
for line in sys.stdin:  # one window per line: spin, then print the share of a core used
    end = time.monotonic() + float(line)
    while time.monotonic() < end:
        pass
    now, cpu = time.monotonic(), time.process_time()
    print(round((cpu - cpu0) / (now - mark), 3), flush=True)
    mark, cpu0 = now, cpu
"""


def _windows(p: subprocess.Popen, count: int, seconds: float = 0.5) -> list[float]:
    shares = []
    for _ in range(count):
        p.stdin.write(f"{seconds}\n")
        p.stdin.flush()
        shares.append(float(p.stdout.readline()))
    return shares


@needs_phones
def test_cpu_quota_limits_a_busy_loop_and_a_change_takes_effect_mid_run():
    with PhoneCluster(1, cpu=0.3) as c:
        p = subprocess.Popen(
            c.prefix(0) + BARE + ["-c", BUSY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            at_03 = _windows(p, 3)
            c.set_cpu(0, 0.05)  # the phone throttles
            at_005 = _windows(p, 3)
            c.set_cpu(0, None)  # and recovers
            uncapped = _windows(p, 3)
            throttled = c.throttling(0)
            used = c.cpu_seconds(0)
        finally:
            p.stdin.close()
            p.wait(10)
    # A cap bounds the share from above whatever the load on this machine (plus scheduling
    # slack); other load can only push shares down, never above a cap.
    assert max(at_03) <= 0.36, at_03
    assert max(at_005) <= 0.07, at_005
    # Lowering the cap mid-run took effect at once, and lifting it gave the loop back more
    # than the low cap allowed (2 cores shared by ~8 busy processes still give > 0.1).
    assert min(at_03) > max(at_005), (at_03, at_005)
    assert sum(uncapped) / 3 > 2 * 0.05, (at_005, uncapped)
    assert throttled["throttled_periods"] >= 10, throttled
    if used is not None:  # cpuacct counts what the loop reported using (plus its start)
        reported = 0.5 * sum(at_03 + at_005 + uncapped)
        assert reported <= used <= reported * 1.25 + 0.15, (used, reported)


OVER_THE_CAP = """
import os
blocks = []
print("allocating", flush=True)
for _ in range(100):
    blocks.append(bytearray(8 << 20))  # written, so really used
print("never here", flush=True)
"""


@needs_phones
def test_memory_cap_kills_the_process_going_over_and_says_so(tmp_path):
    script = tmp_path / "hog.py"
    script.write_text(OVER_THE_CAP)
    with PhoneCluster(1, mem="200M") as c:
        job = c.launch(str(script), python=BARE)
        code = job.wait(timeout=60)
        report = c.report()
        out, err = job.stdout(), job.stderr()
        assert c.oom_kills(0) >= 1
        assert c.memory_peak(0) <= 200 << 20
    assert code == 128 + signal.SIGKILL, err
    assert "allocating" in out and "never here" not in out
    assert "rank 0 (host" in err and "128+SIGKILL" in err, err
    assert "the OOM killer ended 1 process(es) for going over the 200M memory cap" in report


# --------------------------------------------------------------------------- jobs


@needs_phones
def test_ddp_job_through_the_launcher_on_three_phones():
    with PhoneCluster(3, cpu=[0.5, 0.5, 0.25], link="100mbit", mem="1G") as c:
        job = c.launch(os.path.join(LAUNCH_HELPERS, "ddp_train_rank.py"), ["3"])
        code = job.wait(timeout=120)
        out, err = job.stdout(), job.stderr()
        slow = c.throttling(2)
    assert code == 0, err
    assert "all 3 rank(s) exited 0" in err
    losses = {}
    for line in out.splitlines():
        if " step 2 loss " in line:
            name, loss = line.split("]")[0].split()[-1], line.split()[-1]
            losses[name] = loss
    assert sorted(losses) == sorted(c.names), out  # each rank ran on its own phone
    assert len(set(losses.values())) == 1, losses  # and they trained one model
    assert slow["throttled_periods"] > 0  # the quarter-core phone was held back


@needs_phones
def test_shim_refuses_an_unknown_phone():
    with PhoneCluster(1) as c:
        from phalanx.distributed.emulate.cluster import SHIM

        proc = subprocess.run(
            BARE + [SHIM, "--phones", c.phone_table, "-o", "BatchMode=yes", "phone9", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 255
    assert f"no phone named 'phone9' in this cluster (phones: {c.names[0]})" in proc.stderr


@needs_phones
def test_cli_runs_a_script_on_phones_with_a_throttle():
    d = run_python(
        [
            "-m",
            "phalanx.cli",
            "cluster",
            "run",
            "--phones",
            "2",
            "--cpu",
            "0.5,0.3",
            "--link",
            "1gbit,100mbit",
            "--mem",
            "1G",
            "--throttle",
            "1@0=0.2",
            os.path.join(LAUNCH_HELPERS, "hello_rank.py"),
            "x",
        ],
        timeout=60,
    )
    assert d.returncode == 0, d.stderr
    assert d.stdout.count("args=['x']") == 2, d.stdout
    assert "phone 1: " in d.stderr and "cpu 0.3 core, link 100mbit, mem 1G" in d.stderr
    assert "phone 1 cpu 0.3 -> 0.2 core" in d.stderr
    assert "all 2 rank(s) exited 0" in d.stderr


def test_cli_bad_input_exits_2_naming_it():
    d = run_python(
        ["-m", "phalanx.cli", "cluster", "run", "--phones", "2", "--throttle", "5@1=0.2", "x.py"],
        timeout=60,
    )
    assert d.returncode == 2
    assert "--throttle '5@1=0.2': phone 5 of 2 (0..1)" in d.stderr


@needs_phones
def test_cli_status_lists_and_clean_removes_leftovers_of_a_dead_owner():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = f"phx{dead.pid}s0r0"
    ip("netns", "add", stale)
    try:
        status = run_python(["-m", "phalanx.cli", "cluster", "status"], timeout=60)
        assert status.returncode == 0, status.stderr
        assert f"netns          {stale}  owner pid {dead.pid}: stale" in status.stdout
        clean = run_python(["-m", "phalanx.cli", "cluster", "clean"], timeout=60)
        assert clean.returncode == 0 and stale in clean.stdout, clean
        assert stale not in namespaces()
    finally:
        ip("netns", "del", stale, check=False)


@needs_phones
def test_a_capped_phone_runs_as_many_openmp_threads_as_whole_cores(tmp_path, monkeypatch):
    """OpenMP's default (one thread per core of this machine) would spin inside a fraction
    of a core; a phone's processes default to its whole cores (at least 1) unless set."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    script = tmp_path / "threads.py"
    script.write_text("import os; print('threads', os.environ.get('OMP_NUM_THREADS'))\n")
    with PhoneCluster(3, cpu=[0.5, 2, None]) as c:
        job = c.launch(str(script), python=BARE)
        assert job.wait(timeout=60) == 0, job.stderr()
        out = job.stdout()
        bare = subprocess.run(
            c.prefix(0) + ["sh", "-c", "echo threads $OMP_NUM_THREADS"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        mine = subprocess.run(
            c.prefix(0) + ["sh", "-c", "echo threads $OMP_NUM_THREADS"],
            capture_output=True,
            text=True,
            timeout=30,
            env=dict(os.environ, OMP_NUM_THREADS="3"),
        )
    assert f"[rank 0 {c.names[0]}] threads 1" in out, out
    assert f"[rank 1 {c.names[1]}] threads 2" in out, out
    assert f"[rank 2 {c.names[2]}] threads None" in out, out
    assert bare.stdout == "threads 1\n" and mine.stdout == "threads 3\n", (bare, mine)
