"""The local checks of `phalanx doctor`: what decides whether this machine (usually a phone in
Termux) can train well. Each check returns a Check row; none raises, because a doctor that
crashes on the broken machine it should diagnose is useless. /sys is read through a root that
tests can point at a fake tree (PHALANX_SYSFS_ROOT)."""

from __future__ import annotations

import fcntl
import glob
import os
import platform
import re
import socket
import struct
import subprocess
import sys
from dataclasses import asdict, dataclass

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"

# Above this a phone throttles hard (Android's skin/CPU throttling starts in the 40s-60s C).
HOT_CELSIUS = 70.0


@dataclass
class Check:
    name: str
    value: str
    status: str = OK
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def sysfs_root() -> str:
    return os.environ.get("PHALANX_SYSFS_ROOT", "/")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def python_check() -> Check:
    version = platform.python_version()
    return Check("python", f"{version} ({sys.executable})")


def numpy_check() -> Check:
    try:
        import numpy
    except ImportError as e:
        return Check(
            "numpy",
            f"missing ({e})",
            FAIL,
            "pkg install python-numpy (Termux) or pip install numpy",
        )
    return Check("numpy", numpy.__version__)


def phalanx_check() -> Check:
    try:
        import phalanx
    except Exception as e:  # a broken build raises ImportError or worse; report, do not die
        return Check(
            "phalanx",
            f"cannot import: {e}",
            FAIL,
            "reinstall: pip install --force-reinstall phalanx-*.tar.gz",
        )
    return Check("phalanx", f"{phalanx.__version__} ({os.path.dirname(phalanx.__file__)})")


# dnnl_verbose (2.x), onednn_verbose (3.x), with a format version field from 3.5 on
# ("onednn_verbose,v1,info,cpu,isa:...").
_ISA_LINE = re.compile(r"(?:onednn|dnnl)_verbose,(?:v\d+,)?info,cpu,isa:(.*)")
_RUNTIME_LINE = re.compile(
    r"(?:onednn|dnnl)_verbose,(?:v\d+,)?info,cpu,runtime:([^,\s]+)(?:,nthr:(\d+))?"
)

# One convolution (always a oneDNN primitive) run in a child process with verbose output on:
# oneDNN prints the ISA it dispatches to and its CPU runtime there, the same text on x86-64 and
# aarch64 (its C API's ISA query only knows x86 names).
_PROBE = (
    "import phalanx; "
    "phalanx.nn.functional.conv2d(phalanx.ones(1, 1, 4, 4), phalanx.ones(1, 1, 3, 3))"
)


def onednn_checks(timeout: float = 60.0) -> list[Check]:
    try:
        import phalanx

        major, minor, patch = phalanx._C._onednn_version()
        version = f"{major}.{minor}.{patch}"
    except Exception as e:
        return [
            Check("oneDNN", f"unknown ({e})", FAIL, "phalanx does not import; see the phalanx row")
        ]
    # The child imports the phalanx this process imported: same interpreter, flags and path.
    env = dict(
        os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1", PYTHONPATH=os.pathsep.join(sys.path)
    )
    flags = ["-S"] if sys.flags.no_site else []
    try:
        out = subprocess.run(
            [sys.executable, *flags, "-c", _PROBE],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return [Check("oneDNN", version), Check("oneDNN ISA", f"probe failed ({e})", WARN)]
    isa = next((m.group(1) for m in map(_ISA_LINE.match, out.splitlines()) if m), None)
    runtime = next((m for m in map(_RUNTIME_LINE.match, out.splitlines()) if m), None)
    rows = [Check("oneDNN", version + (f", runtime {runtime.group(1)}" if runtime else ""))]
    if isa is None:
        rows.append(
            Check("oneDNN ISA", "not reported", WARN, "run with ONEDNN_VERBOSE=1 to see it")
        )
    elif not isa_has_simd(isa):
        rows.append(
            Check(
                "oneDNN ISA",
                isa,
                WARN,
                "no SIMD ISA detected: oneDNN will use slow reference kernels",
            )
        )
    else:
        rows.append(Check("oneDNN ISA", isa))
    return rows


def isa_has_simd(isa: str) -> bool:
    """Whether oneDNN's reported ISA has vector instructions its JIT kernels use: SSE4.1 and
    AVX on x86-64 (SSE4.1 is the oldest oneDNN targets: an old laptop's, not a reference-only
    machine's), Advanced SIMD (ASIMD, NEON) and SVE on aarch64."""
    return re.search(r"SSE|AVX|ASIMD|SVE|NEON|Advanced SIMD", isa, re.I) is not None


def threads_check() -> Check:
    cores = os.cpu_count() or 1
    try:
        import phalanx

        threads = phalanx.get_num_threads()
    except Exception as e:
        return Check("threads", f"unknown ({e})", WARN)
    value = f"{threads} OpenMP threads, {cores} cores"
    if threads > cores:
        return Check(
            "threads", value, WARN, f"OMP_NUM_THREADS={cores} or fewer (oversubscription is slow)"
        )
    return Check("threads", value)


def _cpu_index(path: str) -> int:
    return int(re.search(r"cpu(\d+)$", path).group(1))


def cpu_checks() -> list[Check]:
    """Cores grouped by maximum frequency: on big.LITTLE phones the groups are the big and the
    little cores, and ranks belong on the big ones."""
    root = sysfs_root()
    cpus = sorted(glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*")), key=_cpu_index)
    groups: dict[int, list[int]] = {}
    for cpu in cpus:
        khz = _read(os.path.join(cpu, "cpufreq/cpuinfo_max_freq"))
        if khz and khz.isdigit():
            groups.setdefault(int(khz), []).append(_cpu_index(cpu))
    if not groups:
        return [Check("CPU cores", f"{os.cpu_count()} (max frequencies not readable)", INFO)]
    parts = [
        f"{len(ids)} x {khz / 1e6:.2f} GHz (cpu {_ranges(ids)})"
        for khz, ids in sorted(groups.items(), reverse=True)
    ]
    rows = [Check("CPU cores", "; ".join(parts))]
    if len(groups) > 1:
        big = groups[max(groups)]
        rows.append(
            Check(
                "big cores",
                _ranges(big),
                INFO,
                f"pin ranks to the big cores: taskset -c {_ranges(big)}"
                f" (or OMP_NUM_THREADS={len(big)})",
            )
        )
    return rows


def _ranges(ids: list[int]) -> str:
    ids, out, start = sorted(ids), [], None
    for i, v in enumerate(ids):
        if start is None:
            start = v
        if i + 1 == len(ids) or ids[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(out)


def thermal_checks() -> list[Check]:
    root = sysfs_root()
    readings = []
    for zone in sorted(glob.glob(os.path.join(root, "sys/class/thermal/thermal_zone*"))):
        raw = _read(os.path.join(zone, "temp"))
        if raw is None or not raw.lstrip("-").isdigit():
            continue
        kind = _read(os.path.join(zone, "type")) or os.path.basename(zone)
        value = int(raw)
        celsius = value / 1000.0 if abs(value) > 1000 else float(value)  # millidegrees on most
        readings.append((celsius, kind))
    if not readings:
        return [Check("temperature", "no readable thermal zone", INFO)]
    hottest = max(readings)
    value = f"hottest {hottest[0]:.1f} C ({hottest[1]}) of {len(readings)} zones"
    if hottest[0] >= HOT_CELSIUS:
        return [
            Check("temperature", value, WARN, "let the phone cool; add airflow (a fan) to the rack")
        ]
    return [Check("temperature", value)]


def is_termux() -> bool:
    return "TERMUX_VERSION" in os.environ or os.environ.get("PREFIX", "").startswith(
        "/data/data/com.termux"
    )


def wake_lock_check() -> Check:
    if not is_termux():
        return Check("wake lock", "not Termux (not needed)", INFO)
    # Termux cannot read Android's wake locks without dumpsys permission; try, else say so.
    try:
        out = subprocess.run(
            ["dumpsys", "power"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    if "com.termux" in out and "WAKE_LOCK" in out.upper():
        return Check("wake lock", "held by Termux")
    if out:
        return Check("wake lock", "not held", WARN, "run termux-wake-lock before training")
    return Check(
        "wake lock",
        "unknown (no permission to read it)",
        WARN,
        "run termux-wake-lock before training",
    )


def interface_addresses() -> list[tuple[str, str]]:
    """(interface, IPv4 address) of every interface that has one, through the SIOCGIFADDR ioctl,
    which works where Android forbids netlink and /proc/net listings."""
    out = []
    SIOCGIFADDR = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue  # no IPv4 address on this interface
            out.append((name, socket.inet_ntoa(packed[20:24])))
    return out


def network_check() -> Check:
    try:
        addrs = interface_addresses()
    except OSError as e:
        return Check("network", f"cannot list interfaces ({e})", WARN)
    outside = [(n, a) for n, a in addrs if not a.startswith("127.")]
    value = ", ".join(f"{n} {a}" for n, a in addrs) or "no IPv4 address"
    if not outside:
        return Check(
            "network",
            value,
            FAIL,
            "no address besides loopback: plug in the Ethernet adapter and set an address",
        )
    return Check("network", value)


def shm_check() -> Check:
    # phalanx itself never uses POSIX shared memory (Android has none); other tools may.
    root = sysfs_root()
    exists = os.path.isdir(os.path.join(root, "dev/shm"))
    return Check("/dev/shm", "present" if exists else "absent (phalanx does not need it)", INFO)


def local_checks() -> list[Check]:
    rows = [python_check(), numpy_check(), phalanx_check()]
    rows += onednn_checks()
    rows.append(threads_check())
    rows += cpu_checks()
    rows += thermal_checks()
    rows.append(wake_lock_check())
    rows.append(network_check())
    rows.append(shm_check())
    return rows
