"""`phalanx doctor`: the local table, big/little cores and temperatures read from a fake /sys,
links measured against `--serve`, failures with their fixes and exit status, and the --hosts
path over the launcher tests' fake ssh."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess

from _spawn import PYTHON, free_port, python_env, run_python, start_python

from phalanx.doctor import render
from phalanx.doctor.checks import FAIL, WARN, cpu_checks, thermal_checks

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch_helpers")
FAKE_SSH = shlex.join(PYTHON + [os.path.join(HELPERS, "fake_ssh.py")])
TIMEOUT = 120


def doctor(*args, **env):
    return run_python(["-m", "phalanx", "doctor", *args], timeout=TIMEOUT, env=python_env(**env))


def rows_of(stdout: str) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(stdout)["checks"]}


def test_local_table_names_versions_isa_and_network():
    r = doctor()
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("python", "numpy", "phalanx", "oneDNN", "oneDNN ISA", "threads", "network"):
        assert any(line.startswith(name + " ") for line in r.stdout.splitlines()), (name, r.stdout)
    rows = rows_of(doctor("--json").stdout)
    assert rows["oneDNN ISA"]["status"] == "ok", rows["oneDNN ISA"]  # the verbose probe parsed
    assert "127.0.0.1" in rows["network"]["value"]


def _fake_sysfs(root, freqs_khz, temps_milli):
    for i, khz in enumerate(freqs_khz):
        d = root / f"sys/devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{khz}\n")
    for i, (kind, milli) in enumerate(temps_milli):
        d = root / f"sys/class/thermal/thermal_zone{i}"
        d.mkdir(parents=True)
        (d / "type").write_text(kind + "\n")
        (d / "temp").write_text(f"{milli}\n")


def test_big_and_little_cores_and_temperatures_from_sysfs(tmp_path, monkeypatch):
    # A Galaxy S10+-like Exynos 9820: 4 little, 2 middle, 2 big cores.
    _fake_sysfs(
        tmp_path,
        [1950000] * 4 + [2314000] * 2 + [2730000] * 2,
        [("cpu-big", 48500), ("battery", 31000)],
    )
    monkeypatch.setenv("PHALANX_SYSFS_ROOT", str(tmp_path))
    cores = {c.name: c for c in cpu_checks()}
    assert cores["CPU cores"].value == (
        "2 x 2.73 GHz (cpu 6-7); 2 x 2.31 GHz (cpu 4-5); 4 x 1.95 GHz (cpu 0-3)"
    )
    assert cores["big cores"].value == "6-7" and "taskset -c 6-7" in cores["big cores"].fix
    (temp,) = thermal_checks()
    assert temp.status == "ok" and temp.value.startswith("hottest 48.5 C (cpu-big) of 2 zones")


def test_hot_phone_is_a_warning_with_its_fix(tmp_path, monkeypatch):
    _fake_sysfs(tmp_path, [1800000], [("cpu", 83000)])
    monkeypatch.setenv("PHALANX_SYSFS_ROOT", str(tmp_path))
    (temp,) = thermal_checks()
    assert temp.status == WARN and "83.0 C" in temp.value and "cool" in temp.fix
    assert "[warn] hottest 83.0 C" in render({"phone": [temp]})


def test_peer_link_measured_against_serve():
    server = start_python(
        ["-u", "-m", "phalanx", "doctor", "--serve", "--port", "0", "--serve-seconds", "60"],
        env=python_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert "serving on port" in line, line
        port = int(line.split("serving on port ")[1].split(";")[0])
        r = doctor("--json", "--peer", f"127.0.0.1:{port}")
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert r.returncode == 0, r.stdout + r.stderr
    row = rows_of(r.stdout)[f"peer 127.0.0.1:{port}"]
    assert row["status"] == "ok", row
    assert row["value"].startswith("rtt ") and "Mbit/s" in row["value"]


def test_unreachable_peer_fails_with_fix():
    port = free_port()  # nothing listens there
    r = doctor("--peer", f"127.0.0.1:{port}")
    assert r.returncode == 1, r.stdout
    assert f"[{FAIL}] unreachable" in r.stdout
    assert f"start `phalanx doctor --serve --port {port}` on 127.0.0.1" in r.stdout


def test_malformed_peer_is_a_failure_naming_the_format():
    r = doctor("--json", "--peer", "no-port-here")
    assert r.returncode == 1
    row = rows_of(r.stdout)["peer no-port-here"]
    assert row["status"] == FAIL and "HOST:PORT" in row["value"]


def test_hosts_over_fake_ssh_one_table(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1:2\n127.0.0.2\n")
    r = doctor("--hosts", str(hosts), "--ssh", FAKE_SSH, "--python", shlex.join(PYTHON), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    table = json.loads(r.stdout)
    assert list(table) == ["this machine", "127.0.0.1", "127.0.0.2"]
    for host in ("127.0.0.1", "127.0.0.2"):
        rows = {row["name"]: row for row in table[host]}
        assert rows["phalanx"]["status"] == "ok"
        assert rows["link to launcher"]["status"] == "ok", rows
    text = doctor("--hosts", str(hosts), "--ssh", FAKE_SSH, "--python", shlex.join(PYTHON))
    header = text.stdout.splitlines()[0].split()
    assert header == ["check", "this", "machine", "127.0.0.1", "127.0.0.2"]


def test_host_without_phalanx_fails_naming_the_fix(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n")
    # `python3 -S -I` on the "host" cannot import phalanx: the doctor says to install it.
    bare = shlex.join([PYTHON[0], "-S", "-I"])
    r = doctor("--hosts", str(hosts), "--ssh", FAKE_SSH, "--python", bare)
    assert r.returncode == 1, r.stdout
    assert "127.0.0.1: ssh: install phalanx on that host" in r.stdout


def test_verbose_lines_of_every_onednn_format_are_parsed():
    # 2.x, 3.0-3.4 and 3.5+ (a format version field) spell the same lines differently.
    from phalanx.doctor.checks import _ISA_LINE, _RUNTIME_LINE

    isa = "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions"
    for prefix in ("dnnl_verbose,", "onednn_verbose,", "onednn_verbose,v1,"):
        assert _ISA_LINE.match(f"{prefix}info,cpu,isa:{isa}").group(1) == isa
        m = _RUNTIME_LINE.match(f"{prefix}info,cpu,runtime:OpenMP,nthr:2")
        assert m.groups() == ("OpenMP", "2")
    assert _ISA_LINE.match("onednn_verbose,v1,info,gpu,runtime:none") is None


def test_every_simd_isa_onednn_reports_counts_as_simd():
    # SSE4.1 was reported as "no SIMD ISA" (seen under ONEDNN_MAX_CPU_ISA=SSE41)
    from phalanx.doctor.checks import isa_has_simd

    for isa in (
        "Intel SSE4.1",
        "Intel AVX2",
        "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions",
        "AArch64 (with Advanced SIMD & floating-point)",
        "AArch64 SVE (256 bits)",
    ):
        assert isa_has_simd(isa), isa
    assert not isa_has_simd("Intel 64")
    assert not isa_has_simd("Generic")
