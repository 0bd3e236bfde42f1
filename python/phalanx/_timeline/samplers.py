"""CPU frequency and temperature samples, where this machine lets us read them (Linux sysfs;
Android often hides the thermal zones from apps): a daemon thread records counters every
`interval` seconds while the timeline runs."""

from __future__ import annotations

import glob
import os
import re
import threading

from . import recorder


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _cpu_files(root: str) -> list[tuple[str, str]]:
    found = []
    for path in glob.glob(f"{root}/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"):
        cpu = re.search(r"/(cpu\d+)/", path).group(1)
        if _read_int(path) is not None:
            found.append((cpu, path))
    return sorted(found, key=lambda x: int(x[0][3:]))


def _thermal_files(root: str) -> list[tuple[str, str]]:
    found = []
    for zone in sorted(glob.glob(f"{root}/class/thermal/thermal_zone[0-9]*")):
        temp = os.path.join(zone, "temp")
        if _read_int(temp) is None:
            continue
        try:
            with open(os.path.join(zone, "type")) as f:
                kind = f.read().strip()
        except OSError:
            kind = ""
        found.append((f"{os.path.basename(zone)} {kind}".strip(), temp))
    return found


class Sampler:
    def __init__(self, interval: float, root: str = "/sys"):
        self.interval = interval
        self.cpus = _cpu_files(root)
        self.zones = _thermal_files(root)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def readable(self) -> bool:
        return bool(self.cpus or self.zones)

    def sample(self) -> None:
        if self.cpus:
            mhz = {cpu: (_read_int(p) or 0) / 1000.0 for cpu, p in self.cpus}
            recorder.counter("cpu frequency (MHz)", mhz)
        if self.zones:
            temps = {z: (_read_int(p) or 0) / 1000.0 for z, p in self.zones}
            recorder.counter("temperature (C)", temps)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        if not self.readable or self.interval <= 0:
            return
        self.sample()
        self._thread = threading.Thread(
            target=self._run, name="phalanx-timeline-sampler", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self.sample()
            self._thread = None
