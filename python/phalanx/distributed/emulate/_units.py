"""The quantities a phone is described by, parsed from the forms people write: link rates
("100mbit", "1gbit", a bare number = Mbit/s), memory sizes ("1G", "512M", "200MiB", bytes)
and CPU shares (a fraction of one core, "none" for no cap). Every parser raises ValueError
naming the argument and the value it could not use."""

from __future__ import annotations

import os
import re

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmg]?)(bit|bps)?\s*$", re.IGNORECASE)
_RATE_SCALE = {"": 1e6, "k": 1e3, "m": 1e6, "g": 1e9}  # a bare number means Mbit/s
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|ms|s)?\s*$", re.IGNORECASE)
_TIME_SCALE = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

# Below 1% of a core a phone would spend its time being scheduled, not computing.
MIN_CPU = 0.01


def parse_rate(value, what: str = "link") -> int | None:
    """Bits per second of a link rate: "100mbit", "1gbit", "500kbit", a number of Mbit/s;
    None / "none" / "" for an unshaped link. Units are decimal, as in tc."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bits = float(value) * 1e6
    else:
        m = _RATE.match(str(value))
        if not m or (m.group(3) or "").lower() == "bps":
            raise ValueError(
                f"{what}={value!r} is not a link rate (e.g. 100mbit, 1gbit, 500kbit, or a "
                "number of Mbit/s)"
            )
        bits = float(m.group(1)) * _RATE_SCALE[m.group(2).lower()]
    if not bits >= 8000:  # tbf cannot shape usefully below 1 kB/s
        raise ValueError(f"{what}={value!r} must be at least 8kbit")
    return int(bits)


def parse_size(value, what: str = "mem") -> int | None:
    """Bytes of a memory size: "1G", "512M", "200MiB", "64k", an int; None / "none" for no
    cap. K, M, G, T are powers of 1024, as in cgroup's memory.limit_in_bytes."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError(f"{what}={value!r} is not a memory size (e.g. 1G, 512M, 200MiB)")
        size = int(float(m.group(1)) * _SIZE_SCALE[m.group(2).lower()])
    if size < 4 << 20:  # below a few MiB not even an interpreter starts
        raise ValueError(f"{what}={value!r} must be at least 4M")
    return size


def parse_seconds(value, what: str) -> float:
    """Seconds of a duration: "50ms", "200us", "1s", a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _TIME.match(str(value))
        if not m:
            raise ValueError(f"{what}={value!r} is not a duration (e.g. 50ms, 1s)")
        seconds = float(m.group(1)) * _TIME_SCALE[(m.group(2) or "s").lower()]
    if not seconds > 0:
        raise ValueError(f"{what}={value!r} must be positive")
    return seconds


def parse_cpu(value, what: str = "cpu") -> float | None:
    """Cores a phone may use: a fraction of one core (0.3), up to this machine's cores;
    None / "none" for no cap."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    try:
        cores = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}={value!r} is not a number of cores (e.g. 0.3)") from None
    limit = os.cpu_count() or 1
    if not MIN_CPU <= cores <= limit:
        raise ValueError(
            f"{what}={value!r} must be within [{MIN_CPU}, {limit}] cores (this machine has {limit})"
        )
    return cores


def per_phone(value, n: int, parse, what: str) -> list:
    """One parsed value per phone from a single value (all phones alike), a list of n, or a
    comma-separated string of n."""
    if isinstance(value, str) and "," in value:
        value = value.split(",")
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{what}={list(value)!r} has {len(value)} entries for {n} phones")
        return [parse(v, f"{what}[{i}]") for i, v in enumerate(value)]
    parsed = parse(value, what)
    return [parsed] * n


def format_rate(bits: int | None) -> str:
    if bits is None:
        return "unshaped"
    for scale, unit in ((1e9, "gbit"), (1e6, "mbit"), (1e3, "kbit")):
        if bits >= scale:
            return f"{bits / scale:g}{unit}"
    return f"{bits}bit"


def format_size(size: int | None) -> str:
    if size is None:
        return "uncapped"
    for shift, unit in ((30, "G"), (20, "M"), (10, "K")):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g}{unit}"
    return f"{size}B"


def parse_bytes(value, what: str) -> int:
    """A positive number of bytes: an int or "64k" / "1m" (K = 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError(f"{what}={value!r} is not a size in bytes (e.g. 65536 or 64k)")
        size = int(float(m.group(1)) * _SIZE_SCALE[m.group(2).lower()])
    if size <= 0:
        raise ValueError(f"{what}={value!r} must be positive")
    return size
