"""OMP_NUM_THREADS for ranks on other hosts (`phalanx launch --hosts`): the host's watchdog
sets it, when neither the user nor the host did and the host runs several ranks or a quota
gives the rank fewer cores than the host has, to the cores the host lets the rank use
(affinity, then a cgroup CPU quota) over the host's ranks, as the launcher does locally.
Without it a rank on a phone capped at a fraction of a core ran one spinning OpenMP thread
per core of the machine: 17x slower."""

from __future__ import annotations

import os
import shlex
import types

from _spawn import PYTHON, python_env, run_python

from phalanx.distributed._launch.common import program_source

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch_helpers")
FAKE_SSH = shlex.join(PYTHON + [os.path.join(HELPERS, "fake_ssh.py")])


def watchdog():
    module = types.ModuleType("watchdog")
    exec(compile(program_source("watchdog"), "watchdog.py", "exec"), module.__dict__)
    return module


def fake_root(tmp_path, cgroup_lines: str, files: dict) -> str:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup_lines)
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


def test_quota_of_a_v1_phone_cgroup_and_its_parent(tmp_path):
    w = watchdog()
    base = "sys/fs/cgroup/cpu,cpuacct"
    root = fake_root(
        tmp_path,
        "4:memory:/x\n3:cpu,cpuacct:/phones/p0\n0::/\n",
        {
            f"{base}/cpu.cfs_quota_us": "-1\n",  # the machine: no quota
            f"{base}/cpu.cfs_period_us": "100000\n",
            f"{base}/phones/cpu.cfs_quota_us": "150000\n",  # the parent: 1.5 cores
            f"{base}/phones/cpu.cfs_period_us": "100000\n",
            f"{base}/phones/p0/cpu.cfs_quota_us": "600\n",  # the phone: 0.3 core
            f"{base}/phones/p0/cpu.cfs_period_us": "2000\n",
        },
    )
    assert w._quota_cores(root) == 0.3
    assert w.default_threads({}, root) == 1  # a fraction of a core: one thread


def test_quota_of_a_v2_cgroup_limits_the_threads(tmp_path):
    w = watchdog()
    root = fake_root(
        tmp_path, "0::/box\n", {"sys/fs/cgroup/cpu.max": "max 100000\n"}
    )  # no limit anywhere: only the affinity and the host's ranks count
    assert w._quota_cores(root) is None
    cores = len(os.sched_getaffinity(0))
    assert w.default_threads({"LOCAL_WORLD_SIZE": "2"}, root) == max(1, cores // 2)
    # one rank and no quota: OpenMP's default fits, left alone as for a lone local rank
    assert w.default_threads({"LOCAL_WORLD_SIZE": "1"}, root) is None
    (tmp_path / "sys/fs/cgroup/box").mkdir()
    (tmp_path / "sys/fs/cgroup/box/cpu.max").write_text("100000 100000\n")  # 1 core
    assert w._quota_cores(root) == 1.0
    assert w.default_threads({"LOCAL_WORLD_SIZE": "x"}, root) == 1
    assert w._quota_cores(str(tmp_path / "nothing")) is None  # unreadable: no quota


def test_remote_ranks_get_omp_num_threads_unless_given(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1:2\n")
    script = tmp_path / "threads_rank.py"
    script.write_text(
        "import os\nprint('THREADS', os.environ['RANK'], os.environ.get('OMP_NUM_THREADS'))\n"
    )
    env = python_env()
    env.pop("OMP_NUM_THREADS", None)
    env.pop("PHALANX_SSH", None)
    base = ["-m", "phalanx.distributed.launch", "--hosts", str(hosts), "--ssh", FAKE_SSH]
    base += ["--python", shlex.join(PYTHON)]
    expected = watchdog().default_threads({"LOCAL_WORLD_SIZE": "2"})
    for extra, want in (([], expected), (["--env", "OMP_NUM_THREADS=3"], 3)):
        r = run_python(base + extra + [str(script)], env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        got = sorted(
            line.split("THREADS ", 1)[1] for line in r.stdout.splitlines() if "THREADS" in line
        )
        assert got == [f"0 {want}", f"1 {want}"], r.stdout
