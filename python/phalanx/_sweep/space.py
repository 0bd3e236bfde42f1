"""What a sweep tries: --grid NAME=V1,V2,... lists, --space NAME=LO:HI[:log] ranges, and the
trial configurations they make (every grid point, times N random samples of the ranges).

A parameter reaches the script as `--NAME VALUE`, VALUE written as in results.csv, so what
the script got and what the table says are the same text.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_INT = re.compile(r"^[-+]?[0-9]+$")


class SweepError(ValueError):
    """Bad sweep input: the message names the option and the value."""


@dataclass(frozen=True)
class Grid:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False  # both bounds written as integers: integer samples

    def sample(self, rng: random.Random) -> str:
        if self.integer:
            if self.log:
                v = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
                return str(min(int(v), int(self.high)))
            return str(rng.randint(int(self.low), int(self.high)))
        if self.log:
            return format_value(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return format_value(rng.uniform(self.low, self.high))


def format_value(value) -> str:
    """How a value is written on the command line and in results.csv (6 significant digits
    for floats, so 0.1 stays 0.1)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def _check_name(name: str, option: str, item) -> str:
    if not _NAME.match(name):
        raise SweepError(
            f"{option} {item!r}: the parameter name {name!r} must be letters, digits, '_' or "
            "'-' (it becomes the script option --NAME)"
        )
    return name


def parse_grid(item: str) -> Grid:
    """'NAME=V1,V2,...' -> Grid."""
    name, eq, values = item.partition("=")
    if not eq:
        raise SweepError(f"--grid expects NAME=V1,V2,..., got {item!r}")
    _check_name(name, "--grid", item)
    parts = tuple(v.strip() for v in values.split(","))
    if not values.strip() or any(not v for v in parts):
        raise SweepError(f"--grid {item!r}: empty value in the list")
    return Grid(name, parts)


def _float(text: str, item: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SweepError(f"--space {item!r}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SweepError(f"--space {item!r}: {what} must be finite, got {text!r}")
    return value


def make_range(name: str, low, high, log: bool, item, integer: bool | None = None) -> Range:
    _check_name(name, "--space", item)
    lo, hi = _float(str(low), item, "LO"), _float(str(high), item, "HI")
    if integer is None:
        integer = bool(_INT.match(str(low).strip()) and _INT.match(str(high).strip()))
    if not lo < hi:
        raise SweepError(f"--space {item!r}: LO must be below HI, got {low} and {high}")
    if log and lo <= 0:
        raise SweepError(f"--space {item!r}: a log range needs LO > 0, got {low}")
    return Range(name, lo, hi, log, integer)


def parse_space(item: str) -> Range:
    """'NAME=LO:HI' or 'NAME=LO:HI:log' -> Range (integer samples if LO and HI are integers)."""
    name, eq, rest = item.partition("=")
    parts = rest.split(":")
    if not eq or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "")):
        raise SweepError(f"--space expects NAME=LO:HI or NAME=LO:HI:log, got {item!r}")
    return make_range(name, parts[0], parts[1], len(parts) == 3 and parts[2] == "log", item)


def grid_from_api(grid) -> list[Grid]:
    """phalanx.sweep(grid=...): {'lr': [0.1, 0.01]} or a list of 'NAME=V1,V2' strings."""
    if grid is None:
        return []
    if isinstance(grid, dict):
        out = []
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise SweepError(f"grid[{name!r}] must be a list of values, got {values!r}")
            values = tuple(format_value(v) for v in values)
            if not values:
                raise SweepError(f"grid[{name!r}] is empty")
            out.append(Grid(_check_name(str(name), "grid", name), values))
        return out
    return [parse_grid(g) for g in ([grid] if isinstance(grid, str) else grid)]


def space_from_api(space) -> list[Range]:
    """phalanx.sweep(space=...): {'lr': (1e-4, 1e-1, 'log'), 'wd': '0:0.01'} or a list of
    'NAME=LO:HI[:log]' strings."""
    if space is None:
        return []
    if isinstance(space, dict):
        out = []
        for name, spec in space.items():
            if isinstance(spec, str):
                out.append(parse_space(f"{name}={spec}"))
                continue
            spec = tuple(spec)
            if len(spec) not in (2, 3) or (len(spec) == 3 and spec[2] not in ("log", "linear")):
                raise SweepError(
                    f"space[{name!r}] must be (LO, HI) or (LO, HI, 'log'), got {spec!r}"
                )
            integer = all(isinstance(v, int) and not isinstance(v, bool) for v in spec[:2])
            log = len(spec) == 3 and spec[2] == "log"
            out.append(make_range(str(name), spec[0], spec[1], log, f"{name}={spec}", integer))
        return out
    return [parse_space(s) for s in ([space] if isinstance(space, str) else space)]


def check_names(grids: list[Grid], ranges: list[Range]) -> list[str]:
    names = [g.name for g in grids] + [r.name for r in ranges]
    seen = set()
    for n in names:
        if n in seen:
            raise SweepError(f"parameter {n!r} is swept twice (--grid/--space)")
        seen.add(n)
    return names


def configurations(
    grids: list[Grid], ranges: list[Range], samples: int, seed: int
) -> list[dict[str, str]]:
    """Every grid point times `samples` random draws of the ranges (the same draws for every
    grid point, so grid points are compared on equal terms). The draws come from `seed`, so
    the same command makes the same list: that is what lets a rerun resume."""
    rng = random.Random(seed)
    draws = [{r.name: r.sample(rng) for r in ranges} for _ in range(samples)] if ranges else [{}]
    points = itertools.product(*[[(g.name, v) for v in g.values] for g in grids])
    return [{**dict(p), **d} for p in points for d in draws]


def script_args(config: dict[str, str]) -> list[str]:
    return [a for name, value in config.items() for a in (f"--{name}", value)]
