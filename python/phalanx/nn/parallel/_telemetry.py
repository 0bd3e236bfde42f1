"""CPU frequency and temperature from /sys, where the kernel lets us read them.

Phones throttle when hot: the clock drops first, the measured step time follows a few steps
later. The balancer reads both here, reports them in its metrics, and treats a falling clock
or a rising temperature as a hint to re-balance now instead of at the next interval. Every
read is best effort: a missing or unreadable file (containers, Android's SELinux) gives None.
"""

from __future__ import annotations

import glob
import os

__all__ = ["Telemetry", "read_cpu_khz", "read_temperature_c"]


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_cpu_khz(root: str = "/") -> float | None:
    """The mean current clock of the CPUs that report one (kHz), or None."""
    pattern = os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq")
    values = [v for p in sorted(glob.glob(pattern)) if (v := _read_int(p)) is not None and v > 0]
    return sum(values) / len(values) if values else None


def read_temperature_c(root: str = "/") -> float | None:
    """The hottest thermal zone (degrees Celsius), or None. Zones report millidegrees;
    a few old phone kernels report degrees, told apart by size."""
    pattern = os.path.join(root, "sys/class/thermal/thermal_zone[0-9]*/temp")
    values = []
    for path in sorted(glob.glob(pattern)):
        v = _read_int(path)
        if v is None or v <= 0:  # disabled zones read 0 or negative
            continue
        values.append(v / 1000.0 if v > 1000 else float(v))
    return max(values) if values else None


class Telemetry:
    """Reads the clock and temperature and says when they hint at throttling.

    The reference values are those at the last re-balance; the hint is a clock at least
    `khz_drop` (fraction) below it, or a temperature `temp_rise` degrees above it."""

    def __init__(self, root: str = "/", khz_drop: float = 0.15, temp_rise: float = 8.0):
        self.root = root
        self.khz_drop = khz_drop
        self.temp_rise = temp_rise
        self.khz: float | None = None
        self.temp_c: float | None = None
        self._ref_khz: float | None = None
        self._ref_temp: float | None = None

    def sample(self) -> None:
        self.khz = read_cpu_khz(self.root)
        self.temp_c = read_temperature_c(self.root)
        if self._ref_khz is None:
            self._ref_khz = self.khz
        if self._ref_temp is None:
            self._ref_temp = self.temp_c

    def rebased(self) -> None:
        """Shares were just re-agreed: the present readings become the reference."""
        self._ref_khz, self._ref_temp = self.khz, self.temp_c

    def hint(self) -> bool:
        clock = (
            self.khz is not None
            and self._ref_khz is not None
            and self.khz < (1.0 - self.khz_drop) * self._ref_khz
        )
        clock_up = (
            self.khz is not None
            and self._ref_khz is not None
            and self.khz > (1.0 + self.khz_drop) * self._ref_khz
        )
        heat = (
            self.temp_c is not None
            and self._ref_temp is not None
            and self.temp_c > self._ref_temp + self.temp_rise
        )
        return clock or clock_up or heat
