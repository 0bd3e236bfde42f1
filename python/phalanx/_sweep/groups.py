"""Where trials run: a "slot" is one group of ranks a trial occupies, and holds the launcher
options that put a trial there. `--nproc K --parallel P` makes P local slots of K ranks;
`--hosts FILE --group-size K` splits the file, in its order, into slots of K hosts (each a
hosts file of its own under DIR/hosts), and as many run side by side as --parallel allows.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from ..distributed._launch.common import UsageError
from ..distributed._launch.hosts import HostEntry, read_hosts
from .space import SweepError


@dataclass(frozen=True)
class Slot:
    launcher_args: tuple[str, ...]
    hosts: str  # for results.csv


def _host_line(h: HostEntry) -> str:
    fields = [h.destination, f"slots={h.slots}"]
    if h.port is not None:
        fields.append(f"port={h.port}")
    if h.addr is not None:
        fields.append(f"addr={h.addr}")
    return " ".join(fields)


def _label(h: HostEntry) -> str:
    return h.host if h.slots == 1 else f"{h.host}:{h.slots}"


def plan_slots(
    out: str, nproc: int | None, hosts: str | None, group_size: int | None, parallel: int | None
) -> list[Slot]:
    if parallel is not None and (isinstance(parallel, bool) or parallel < 1):
        raise SweepError(f"parallel must be at least 1, got {parallel}")
    if hosts is None:
        if group_size is not None:
            raise SweepError("--group-size splits a --hosts file; with local ranks use --nproc")
        k = 1 if nproc is None else nproc
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise SweepError(f"nproc must be at least 1, got {nproc!r}")
        label = "localhost" if k == 1 else f"localhost:{k}"
        return [Slot(("--nproc", str(k)), label)] * (parallel or 1)
    if nproc is not None:
        raise SweepError("give --nproc or --hosts, not both")
    try:
        entries = read_hosts(hosts)
    except UsageError as e:
        raise SweepError(str(e)) from None
    k = len(entries) if group_size is None else group_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(entries):
        raise SweepError(
            f"group size must be from 1 to the {len(entries)} host(s) of {hosts!r}, got "
            f"{group_size!r}"
        )
    n_groups = len(entries) // k
    if len(entries) % k:
        left = ", ".join(h.host for h in entries[n_groups * k :])
        print(
            f"phalanx sweep: {len(entries)} hosts do not split into groups of {k}; unused: {left}",
            file=sys.stderr,
        )
    directory = os.path.join(out, "hosts")
    os.makedirs(directory, exist_ok=True)
    slots = []
    for g in range(min(n_groups, parallel or n_groups)):
        group = entries[g * k : (g + 1) * k]
        path = os.path.join(directory, f"group{g}.txt")
        with open(path, "w") as f:
            f.write("".join(_host_line(h) + "\n" for h in group))
        slots.append(Slot(("--hosts", path), " ".join(_label(h) for h in group)))
    return slots
