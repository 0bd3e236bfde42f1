"""The rank plan of `phalanx launch`: which rank runs where (RankSpec, plan_ranks), the
environment each rank is given (rank_env), and the address ranks use to reach the launcher's
store (route_address).

This is pure bookkeeping, kept apart from starting processes so the numbering rules (ranks in
hosts-file order, a host listed twice sharing its local numbering) can be read and tested on
their own.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from .common import UsageError
from .hosts import HostEntry


@dataclass
class RankSpec:
    rank: int
    local_rank: int
    local_world_size: int
    group_rank: int  # index of the host (0 for --nproc)
    host: HostEntry | None  # None: a local process

    @property
    def host_label(self) -> str:
        return self.host.host if self.host else "127.0.0.1"


def plan_ranks(nproc: int | None, hosts: list[HostEntry] | None) -> list[RankSpec]:
    if hosts is None:
        n = nproc or 1
        return [RankSpec(r, r, n, 0, None) for r in range(n)]
    per_host: dict[str, int] = {}
    for h in hosts:  # a host listed twice shares its local numbering
        per_host[h.host] = per_host.get(h.host, 0) + h.slots
    groups = list(dict.fromkeys(h.host for h in hosts))
    specs, used = [], dict.fromkeys(per_host, 0)
    for h in hosts:
        for _ in range(h.slots):
            specs.append(
                RankSpec(len(specs), used[h.host], per_host[h.host], groups.index(h.host), h)
            )
            used[h.host] += 1
    return specs


def route_address(hosts: list[HostEntry]) -> str:
    """This machine's IPv4 address on the route to the first resolvable host (a UDP connect
    sends nothing)."""
    errors = []
    for h in hosts:
        for name in dict.fromkeys([h.addr, h.host]):
            if not name:
                continue
            try:
                info = socket.getaddrinfo(name, 9, socket.AF_INET, socket.SOCK_DGRAM)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.connect(info[0][4])
                    addr = s.getsockname()[0]
                if addr and addr != "0.0.0.0":
                    return addr
            except (OSError, UnicodeError) as e:  # UnicodeError: the IDNA codec's verdict
                errors.append(f"{name}: {e}")
    raise UsageError(
        "cannot find this machine's address toward the hosts ("
        + "; ".join(errors)
        + "): pass --master-addr"
    )


def rank_env(args, spec: RankSpec, world: int, master: tuple[str, int]) -> dict[str, str]:
    env = {
        "MASTER_ADDR": master[0],
        "MASTER_PORT": str(master[1]),
        "RANK": str(spec.rank),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(spec.local_rank),
        "LOCAL_WORLD_SIZE": str(spec.local_world_size),
        "GROUP_RANK": str(spec.group_rank),
        "GROUP_WORLD_SIZE": str(args.group_world_size),
        "PHALANX_JOB_ID": args.job_id,
        "PHALANX_TOKEN": args.token,
        "PHALANX_STORE_EXTERNAL": "1",
        "PYTHONUNBUFFERED": "1",
        "PHALANX_PROGRESS": getattr(args, "progress", "lines"),
    }
    if spec.host is not None and spec.host.addr:
        env["PHALANX_ADDR"] = spec.host.addr
    if spec.host is not None and spec.host.switch is not None:
        env["PHALANX_SWITCH"] = str(spec.host.switch)  # algorithms/hierarchical.py
    for field, name in (
        ("link", "PHALANX_LINK"),  # DDP's choice of all-reduce: nn/parallel/_allreduce_choice.py
        ("uplink", "PHALANX_UPLINK"),
        ("latency_us", "PHALANX_LINK_LATENCY_US"),
    ):
        if spec.host is not None and getattr(spec.host, field) is not None:
            env[name] = getattr(spec.host, field)
    if spec.host is None and spec.local_world_size > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, _cores() // spec.local_world_size))
    env.update(args.env)  # the user's word is last
    return env


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
