"""Hierarchical all-reduce for ranks wired through several switches (issue 15, docs/scale.md).

    hier = Hierarchy.from_env()            # every rank: PHALANX_SWITCH (hostfile `switch=N`)
    hier.all_reduce(tensor)                # the sum over all ranks, in place
    ddp.register_comm_hook(hier, hierarchical_hook)

A flat all-reduce across switches sends many ranks' traffic over the uplink between two
switches at once (bcube's long-distance rounds); here only one leader per switch crosses it:
1. all-reduce inside each switch's group (every member then holds the group's sum),
2. all-reduce among the leaders (the lowest rank of each switch) over the uplinks,
3. broadcast from the leader inside its group.
phalanx.perfmodel.allreduce_time(..., "hierarchical", group_size=k, uplink=...) predicts when
this beats the flat algorithm (a slow uplink, many ranks per switch) and when it does not (one
switch: the extra broadcast costs more than it saves).
"""

from __future__ import annotations

import os

from ...futures import Future
from .. import ReduceOp, all_gather, all_reduce, broadcast, get_rank, get_world_size, new_group

ENV = "PHALANX_SWITCH"


def _switch_from_env() -> int:
    raw = os.environ.get(ENV, "0")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{ENV}={raw!r} must be a non-negative integer (the rank's switch)")
    return value


class Hierarchy:
    """The switch of every rank and the process groups of a hierarchical all-reduce. Every
    rank must construct it, with the same `switches` (one entry per rank), as new_group
    requires."""

    def __init__(self, switches: list[int]):
        world, rank = get_world_size(), get_rank()
        if len(switches) != world:
            raise ValueError(f"switches has {len(switches)} entries for a world of {world} ranks")
        if any(not isinstance(s, int) or s < 0 for s in switches):
            raise ValueError(f"switches must be non-negative integers, got {switches}")
        self.switches = list(switches)
        members = {}
        for r, s in enumerate(self.switches):
            members.setdefault(s, []).append(r)
        self.groups = [members[s] for s in sorted(members)]
        self.leaders = [g[0] for g in self.groups]
        mine = members[self.switches[rank]]
        self.leader = mine[0]
        self.is_leader = rank == self.leader
        # Every rank creates every group in the same order (new_group's rule); it keeps its own.
        self.local_group = None
        for g in self.groups:
            pg = new_group(g) if len(g) > 1 else None
            if g is mine:
                self.local_group = pg
        pg = new_group(self.leaders) if len(self.leaders) > 1 else None
        self.leader_group = pg if self.is_leader else None

    @classmethod
    def from_env(cls) -> Hierarchy:
        """Each rank's PHALANX_SWITCH (the launcher sets it from the hostfile's `switch=`;
        unset: switch 0), gathered from every rank."""
        import phalanx  # the package, not at import time: phalanx imports distributed

        t = phalanx.tensor([_switch_from_env()], dtype=phalanx.int64)
        parts = [phalanx.zeros(1, dtype=phalanx.int64) for _ in range(get_world_size())]
        all_gather(parts, t)
        return cls([int(p.item()) for p in parts])

    def all_reduce(self, tensor) -> None:
        """Sums `tensor` over all ranks, in place."""
        if self.local_group is not None:
            all_reduce(tensor, ReduceOp.SUM, group=self.local_group)
        self._finish(tensor)

    def _finish(self, tensor):
        if self.leader_group is not None:
            all_reduce(tensor, ReduceOp.SUM, group=self.leader_group)
        if self.local_group is not None:
            broadcast(tensor, self.leader, group=self.local_group)
        return tensor

    def __repr__(self) -> str:
        return f"Hierarchy(groups={self.groups}, leaders={self.leaders})"


def hierarchical_hook(state: Hierarchy, bucket) -> Future:
    """DDP communication hook: the bucket's sum over ranks by `state`'s hierarchical
    all-reduce. The switch-local all-reduce starts at once (overlapping the rest of
    backward); the leaders' all-reduce and the broadcast run when DDP collects the bucket."""
    buffer = bucket.buffer()
    works = []
    if state.local_group is not None:
        works.append(all_reduce(buffer, ReduceOp.SUM, group=state.local_group, async_op=True))

    def rest():
        for w in works:
            w.wait()
        return state._finish(buffer)

    return Future(compute=rest)
