"""DDP's choice between the flat all-reduce and the hierarchical one (issue 15, docs/scale.md).

Every rank contributes one row: its switch (PHALANX_SWITCH, the hostfile's `switch=`; -1 when
undeclared) and the figures of its links (PHALANX_LINK, PHALANX_UPLINK, PHALANX_LINK_LATENCY_US,
the hostfile's `link=`, `uplink=`, `latency_us=`). The rows are all-gathered, so `decide` sees
the same table on every rank and every rank makes the same choice; a local guess could differ
between ranks and leave half of them in a collective the others never enter.

The rule, from the measurements in docs/scale.md: hierarchical only when every rank declares a
switch, there are at least two switches, and phalanx.perfmodel predicts the hierarchical
all-reduce of DDP's buckets at most GAIN times the flat one's. With ranks listed by switch,
Gloo's bcube already sends one rank's worth over each uplink and the prediction says no; with
the ranks interleaved across switches and a slow uplink it says yes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ... import perfmodel

ENV_SWITCH = "PHALANX_SWITCH"
ENV_LINK = "PHALANX_LINK"
ENV_UPLINK = "PHALANX_UPLINK"
ENV_LATENCY = "PHALANX_LINK_LATENCY_US"
DEFAULT_LINK = "1gbit"  # a phone's wired port (the 138-phone paper's Ethernet)
DEFAULT_LATENCY_US = 50.0  # perfmodel.Link.from_rate's default, a switched LAN's round
# Hierarchical must be predicted this much faster: the model is within about 15% of the
# measurements (docs/scale.md), so a smaller predicted gain may be none at all.
GAIN = 0.9
CHOICES = ("auto", "flat", "hierarchical")


def _env_rate(name: str, default: str | None) -> int:
    raw = os.environ.get(name, default)
    if raw is None:
        return 0
    try:
        return round(perfmodel.parse_rate(raw))
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={raw!r} is not a rate like '100mbit' or '1gbit' (a link's bandwidth)"
        ) from None


def local_row() -> list[int]:
    """This rank's [switch or -1, link bit/s, uplink bit/s or 0 (undeclared), latency ns]."""
    raw = os.environ.get(ENV_SWITCH)
    switch = -1
    if raw is not None:
        if not raw.strip().isdigit():
            raise ValueError(f"{ENV_SWITCH}={raw!r} must be a non-negative integer (the switch)")
        switch = int(raw)
    raw = os.environ.get(ENV_LATENCY, str(DEFAULT_LATENCY_US))
    try:
        latency = float(raw)
    except ValueError:
        latency = -1.0
    if not 0 <= latency < 1e9:
        raise ValueError(f"{ENV_LATENCY}={raw!r} must be a non-negative number of microseconds")
    return [
        switch,
        _env_rate(ENV_LINK, DEFAULT_LINK),
        _env_rate(ENV_UPLINK, None),
        round(latency * 1e3),
    ]


@dataclass(frozen=True)
class Decision:
    algorithm: str  # "flat" or "hierarchical"
    reason: str
    switches: list[int] | None = None  # each rank's switch, when every rank declared one
    flat_s: float | None = None  # predicted seconds per step for DDP's buckets
    hierarchical_s: float | None = None


def _contiguous(switches: list[int]) -> bool:
    """Whether each switch's ranks are consecutive (a hostfile listing each switch together)."""
    seen, last = set(), None
    for s in switches:
        if s != last and s in seen:
            return False
        seen.add(s)
        last = s
    return True


def decide(rows: list[list[int]], bucket_bytes: list[int]) -> Decision:
    """The choice from every rank's row (see local_row) and the sizes of DDP's buckets."""
    world = len(rows)
    if world < 2:
        return Decision("flat", "one rank")
    switches = [int(r[0]) for r in rows]
    undeclared = [rank for rank, s in enumerate(switches) if s < 0]
    if len(undeclared) == world:
        return Decision("flat", f"no rank declares a switch ({ENV_SWITCH}, hostfile switch=)")
    if undeclared:
        return Decision(
            "flat", f"rank(s) {undeclared} declare no switch ({ENV_SWITCH}); all must", switches
        )
    members: dict[int, list[int]] = {}
    for rank, s in enumerate(switches):
        members.setdefault(s, []).append(rank)
    if len(members) < 2:
        return Decision("flat", "every rank is on one switch", switches)
    # The slowest link and uplink bound a collective's rounds; take them from every rank.
    alpha = max(r[3] for r in rows) * 1e-9
    link = perfmodel.Link(alpha, max(8.0 / r[1] for r in rows))
    # An undeclared uplink is taken as no bottleneck (a switch's uplink is usually at least as
    # fast as its ports together): hierarchical then only adds stages, and the choice is flat.
    uplink = perfmodel.Link(alpha, max(8.0 / r[2] if r[2] else 0.0 for r in rows))
    # perfmodel needs equal groups; unequal ones are modelled as the largest, k per switch.
    k, groups = max(len(m) for m in members.values()), len(members)
    by_switch = _contiguous(switches)
    kw = {"group_size": k, "uplink": uplink}
    flat = sum(
        perfmodel.allreduce_time(b, k * groups, link, ranks_by_switch=by_switch, **kw)
        for b in bucket_bytes
    )
    hier = sum(
        perfmodel.allreduce_time(b, k * groups, link, "hierarchical", **kw) for b in bucket_bytes
    )
    order = "listed by switch" if by_switch else "not listed by switch"
    figures = (
        f"{groups} switches, ranks {order}, link {link.bandwidth_mbit:.0f} Mbit/s, uplink "
        f"{uplink.bandwidth_mbit:.0f} Mbit/s (inf: undeclared): perfmodel predicts hierarchical "
        f"{hier * 1e3:.1f} ms vs flat {flat * 1e3:.1f} ms per step"
    )
    if hier <= GAIN * flat:
        return Decision("hierarchical", figures, switches, flat, hier)
    return Decision(
        "flat", figures + f" (hierarchical needs <= {GAIN:.0%} of flat)", switches, flat, hier
    )
