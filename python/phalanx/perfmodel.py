"""A throughput model of synchronous data-parallel training (DDP): step time and images/s.

    from phalanx import perfmodel as pm
    link = pm.Link.from_rate("1gbit", alpha_s=60e-6)
    model = pm.ModelProfile.uniform("mlp", param_bytes=7.4e6, forward_s=0.010,
                                    backward_s=0.020, optimizer_s=0.004, batch=32)
    est = pm.step_time(model, world=8, link=link)
    est.step_s, est.images_per_s, est.comm_exposed_s

A step is the slowest rank's forward, then its backward, during which each gradient bucket's
all-reduce starts as soon as the bucket is ready and the previous bucket's all-reduce has
finished (DDP sends buckets in order, one at a time), then the optimizer. Only the
communication left over when backward ends is added to the step ("exposed"). Stragglers: every
collective waits for the slowest rank, so compute is the slowest rank's.

All-reduce costs are alpha-beta (Hockney) models of the algorithms phalanx runs (Gloo's, see
csrc/dist/allreduce_algorithm.cc), on a link of latency alpha (s per message round) and
inverse bandwidth beta (s per byte, per direction of a full-duplex port):
- ring: 2(p-1) rounds, each rank sends and receives 2(p-1)/p of the message;
- bcube (recursive halving then doubling, base 2): 2 ceil(log2 p) rounds, the same bytes;
- auto: phalanx's choice (ring from 16 MiB per rank, else bcube; ring at 2 ranks);
- hierarchical: a reduce inside each group of `group_size` ranks (one switch) to its leader,
  an all-reduce among the leaders over the uplink, a broadcast back inside the group;
- flat over switches (group_size and uplink given, another algorithm): ring or bcube across
  the switches, with what crosses the uplinks (see allreduce_time).
Calibrate alpha and beta with `fit_link` from measured all-reduce times (benchmarks/
dist_bench.py, benchmarks/perfmodel_validate.py) and compute from a rank's measured forward,
backward and optimizer times. docs/scale.md has the validation and the 138-phone projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

__all__ = [
    "Link",
    "ModelProfile",
    "StepEstimate",
    "allreduce_time",
    "fit_link",
    "step_time",
    "parse_rate",
]

ALGORITHMS = ("ring", "bcube", "auto", "hierarchical")
RING_SHARE_BYTES = 16 << 20  # csrc/dist/allreduce_algorithm.cc kRingShareBytes


def parse_rate(rate) -> float:
    """Bits per second from '100mbit', '1gbit', '300kbit' or a number of Mbit/s."""
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        return float(rate) * 1e6
    if not isinstance(rate, str):
        raise TypeError(f"rate must be a number of Mbit/s or a string like '1gbit', got {rate!r}")
    text = rate.strip().lower()
    for suffix, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if text.endswith(suffix):
            try:
                value = float(text[: -len(suffix)]) * scale
            except ValueError:
                break
            if value > 0:
                return value
            break
    raise ValueError(f"rate={rate!r} is not a rate like '100mbit', '1gbit' or a number of Mbit/s")


@dataclass(frozen=True)
class Link:
    """One rank's network port: alpha seconds per message round, beta seconds per byte."""

    alpha_s: float
    beta_s_per_byte: float

    def __post_init__(self):
        if not (self.alpha_s >= 0 and math.isfinite(self.alpha_s)):
            raise ValueError(f"Link: alpha_s must be >= 0 and finite, got {self.alpha_s!r}")
        if not (self.beta_s_per_byte >= 0 and math.isfinite(self.beta_s_per_byte)):
            raise ValueError(
                f"Link: beta_s_per_byte must be >= 0 and finite, got {self.beta_s_per_byte!r}"
            )

    @classmethod
    def from_rate(cls, rate, alpha_s: float = 50e-6, efficiency: float = 1.0) -> Link:
        """A link of `rate` ('1gbit', Mbit/s) of which `efficiency` is usable payload."""
        if not 0 < efficiency <= 1:
            raise ValueError(f"efficiency must be within (0, 1], got {efficiency!r}")
        return cls(alpha_s, 8.0 / (parse_rate(rate) * efficiency))

    @classmethod
    def shared_medium(
        cls, rate, world: int, alpha_s: float = 3e-3, relay: int = 2, efficiency: float = 0.6
    ) -> Link:
        """A radio channel of `rate` shared by `world` ranks (Wi-Fi through one access point):
        during an all-reduce every rank sends at once, so each gets 1/world of the air time,
        and a frame from phone to phone crosses the air `relay` times (up to the access point,
        down again). `efficiency`: the share of the nominal rate TCP gets (contention,
        acknowledgements, half-duplex)."""
        world = _check_world(world)
        if relay < 1:
            raise ValueError(f"relay must be >= 1, got {relay!r}")
        per_rank = cls.from_rate(rate, alpha_s, efficiency)
        return cls(alpha_s, per_rank.beta_s_per_byte * world * relay)

    @property
    def bandwidth_mbit(self) -> float:
        return math.inf if self.beta_s_per_byte == 0 else 8e-6 / self.beta_s_per_byte


def _check_world(world) -> int:
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"world must be an int >= 1, got {world!r}")
    return world


def _rounds(algorithm: str, world: int) -> int:
    if world == 1:
        return 0
    if algorithm == "ring":
        return 2 * (world - 1)
    return 2 * math.ceil(math.log2(world))  # bcube


def choose_algorithm(nbytes: float, world: int) -> str:
    """phalanx's automatic choice (csrc/dist/allreduce_algorithm.cc)."""
    if world <= 2 or nbytes / world >= RING_SHARE_BYTES:
        return "ring"
    return "bcube"


def allreduce_time(
    nbytes: float,
    world: int,
    link: Link,
    algorithm: str = "auto",
    *,
    group_size: int | None = None,
    uplink: Link | None = None,
    ranks_by_switch: bool = True,
) -> float:
    """Seconds to all-reduce `nbytes` over `world` ranks on `link` (see the module doc).

    group_size, uplink: ranks in groups of `group_size` (a switch each) on `link`, the
    switches joined by `uplink` (default: `link`). ranks_by_switch: consecutive ranks share
    a switch (a hostfile listing each switch's phones together); False: rank i on switch
    i mod g, so bcube's first, largest rounds cross the uplinks."""
    world = _check_world(world)
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes!r}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    if group_size is not None and (group_size < 1 or world % group_size):
        raise ValueError(f"group_size={group_size!r} must divide world={world} (ranks per switch)")
    if algorithm == "hierarchical" and group_size is None:
        raise ValueError("hierarchical all-reduce needs group_size (ranks per switch)")
    if world == 1 or nbytes == 0:
        return 0.0
    up = uplink or link
    if algorithm == "hierarchical":
        k, groups = group_size, world // group_size
        # Reduce to the leader, then broadcast from it: each moves what an all-reduce moves.
        inside = 2 * allreduce_time(nbytes, k, link, "auto") if k > 1 else 0.0
        return inside + allreduce_time(nbytes, groups, up, "auto")
    if algorithm == "auto":
        algorithm = choose_algorithm(nbytes, world)
    moved = 2.0 * (world - 1) / world * nbytes
    rounds = _rounds(algorithm, world)
    if group_size is None or group_size == world:
        return rounds * link.alpha_s + moved * link.beta_s_per_byte
    # Flat over several switches (groups of consecutive ranks). A ring crosses each uplink
    # with one rank's stream. Gloo's bcube halves from the nearest partner outwards: the
    # rounds inside a switch come first and carry most of the data; by the time partners sit
    # across an uplink each rank holds 1/k of the message, so the k ranks of a switch
    # together send what one rank would, 2(g-1)/g of the message, over their uplink.
    # (Measured on the emulated cluster, benchmarks/hierarchical_bench.py, docs/scale.md.)
    k, groups = group_size, world // group_size
    alpha = max(link.alpha_s, up.alpha_s)
    if algorithm == "ring":
        return rounds * alpha + moved * max(link.beta_s_per_byte, up.beta_s_per_byte)
    across = 2.0 * (groups - 1) / groups * nbytes
    if not ranks_by_switch:
        # The first log2(g) rounds pair ranks on different switches: each of a switch's k
        # ranks sends its (g-1)/g of the message across, twice (halving, doubling).
        inside = 2.0 * (k - 1) / k * nbytes / groups * link.beta_s_per_byte
        return (
            rounds * alpha
            + inside
            + max(across * link.beta_s_per_byte, across * k * up.beta_s_per_byte)
        )
    inside = 2.0 * (k - 1) / k * nbytes * link.beta_s_per_byte
    return (
        rounds * alpha
        + inside
        + max(across / k * link.beta_s_per_byte, across * up.beta_s_per_byte)
    )


def fit_link(samples, world: int = 2, algorithm: str = "auto") -> Link:
    """alpha and beta from measured all-reduce times: samples of (bytes, seconds) on `world`
    ranks. alpha is the smallest message's time per round (its bytes are negligible); beta
    the least-squares slope of the rest, t = rounds * alpha + moved_bytes * beta.

    Not a joint two-parameter fit: a shaped link's token bucket passes a burst (tens to
    hundreds of KB) at full speed, so mid-sized messages look faster than the rate and would
    drag a joint fit's beta down; the large messages, which carry the time, set beta."""
    world = _check_world(world)
    if world < 2:
        raise ValueError("fit_link needs all-reduce times of at least 2 ranks")
    rows = []
    for nbytes, seconds in sorted(samples):
        algo = choose_algorithm(nbytes, world) if algorithm == "auto" else algorithm
        rows.append((_rounds(algo, world), 2.0 * (world - 1) / world * nbytes, float(seconds)))
    if len({r[1] for r in rows}) < 2:
        raise ValueError("fit_link needs samples of at least two different sizes")
    rounds0, moved0, t0 = rows[0]
    rest = rows[1:]
    alpha, beta = 0.0, 0.0
    for _ in range(50):  # each depends on the other; the smallest message's bytes are few
        beta = max(
            0.0, sum(m * (t - r * alpha) for r, m, t in rest) / sum(m * m for _, m, _ in rest)
        )
        alpha = max(0.0, (t0 - moved0 * beta) / rounds0)
    return Link(alpha, beta)


@dataclass(frozen=True)
class ModelProfile:
    """What one rank's compute costs for one step, measured or given.

    buckets: the gradient buckets in the order backward produces them (bytes each), with
    bucket_backward_s the backward time up to each bucket's readiness (same length, summing
    to backward_s). batch: samples per rank per step."""

    name: str
    forward_s: float
    backward_s: float
    optimizer_s: float
    batch: int
    buckets: tuple = ()
    bucket_backward_s: tuple = ()

    def __post_init__(self):
        for f in ("forward_s", "backward_s", "optimizer_s"):
            v = getattr(self, f)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"ModelProfile {self.name}: {f} must be >= 0, got {v!r}")
        if len(self.buckets) != len(self.bucket_backward_s):
            raise ValueError(
                f"ModelProfile {self.name}: {len(self.buckets)} buckets but "
                f"{len(self.bucket_backward_s)} bucket_backward_s"
            )

    @property
    def param_bytes(self) -> float:
        return float(sum(self.buckets))

    @property
    def compute_s(self) -> float:
        return self.forward_s + self.backward_s + self.optimizer_s

    @classmethod
    def uniform(
        cls,
        name: str,
        param_bytes: float,
        forward_s: float,
        backward_s: float,
        optimizer_s: float,
        batch: int,
        bucket_cap_mb: float = 25.0,
        first_bucket_cap_mb: float = 1.0,
    ) -> ModelProfile:
        """Gradients spread evenly over backward (backward time proportional to bytes), cut
        into DDP's buckets: a first small one, then bucket_cap_mb each."""
        if param_bytes <= 0:
            raise ValueError(f"param_bytes must be positive, got {param_bytes!r}")
        caps = [first_bucket_cap_mb * 2**20]
        left = param_bytes - caps[0]
        buckets = [min(param_bytes, caps[0])]
        while left > 0:
            b = min(left, bucket_cap_mb * 2**20)
            buckets.append(b)
            left -= b
        per_byte = backward_s / param_bytes
        done, ready = 0.0, []
        for b in buckets:
            done += b
            ready.append(done * per_byte)
        return cls(name, forward_s, backward_s, optimizer_s, batch, tuple(buckets), tuple(ready))

    def scaled(self, compute_factor: float, batch: int | None = None) -> ModelProfile:
        """The same model on a device `compute_factor` times slower (or a batch as many
        times larger: pass the new batch)."""
        k = compute_factor
        return replace(
            self,
            forward_s=self.forward_s * k,
            backward_s=self.backward_s * k,
            optimizer_s=self.optimizer_s,
            batch=self.batch if batch is None else batch,
            bucket_backward_s=tuple(t * k for t in self.bucket_backward_s),
        )


@dataclass(frozen=True)
class StepEstimate:
    step_s: float
    images_per_s: float
    compute_s: float  # the slowest rank's forward + backward + optimizer
    comm_s: float  # all buckets' all-reduce time, end to end if nothing overlapped
    comm_exposed_s: float  # what backward did not hide
    bucket_times_s: list = field(default_factory=list)

    @property
    def scaling_efficiency(self) -> float:
        """images/s relative to `world` ranks that never communicate."""
        return self.compute_s / self.step_s if self.step_s else 1.0


def step_time(
    model: ModelProfile,
    world: int,
    link: Link,
    algorithm: str = "auto",
    *,
    compression: float = 1.0,
    straggler: float = 1.0,
    overlap: bool = True,
    group_size: int | None = None,
    uplink: Link | None = None,
    ranks_by_switch: bool = True,
    cpu_s_per_byte: float = 0.0,
) -> StepEstimate:
    """One DDP step of `model` on `world` ranks (see the module doc).

    compression: bytes sent per gradient byte (0.5: fp16_compress_hook). straggler: the
    slowest rank's compute relative to the profile's (1.3: one rank 30% slower). overlap:
    False sends every bucket after backward (no overlap). group_size, uplink,
    ranks_by_switch: several switches (see allreduce_time). cpu_s_per_byte: the host's work per
    gradient byte that a bucket's all-reduce adds (copies into and out of the bucket, the
    reductions, the averaging): negligible on a fast core, not on a slow or shared one."""
    world = _check_world(world)
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be within (0, 1], got {compression!r}")
    if straggler < 1:
        raise ValueError(f"straggler must be >= 1 (the slowest rank's slowdown), got {straggler}")
    if not (cpu_s_per_byte >= 0 and math.isfinite(cpu_s_per_byte)):
        raise ValueError(f"cpu_s_per_byte must be >= 0, got {cpu_s_per_byte!r}")
    m = model.scaled(straggler) if straggler != 1 else model
    costs = [
        allreduce_time(
            b * compression,
            world,
            link,
            algorithm,
            group_size=group_size,
            uplink=uplink,
            ranks_by_switch=ranks_by_switch,
        )
        + (b * cpu_s_per_byte if world > 1 else 0.0)
        for b in m.buckets
    ]
    backward_end = m.forward_s + m.backward_s
    comm_end = m.forward_s
    for ready, cost in zip(m.bucket_backward_s, costs):
        start = m.forward_s + (ready if overlap else m.backward_s)
        comm_end = max(comm_end, start) + cost
    exposed = max(0.0, comm_end - backward_end)
    step = backward_end + exposed + m.optimizer_s
    return StepEstimate(
        step_s=step,
        images_per_s=world * m.batch / step if step else math.inf,
        compute_s=m.compute_s,
        comm_s=sum(costs),
        comm_exposed_s=exposed,
        bucket_times_s=costs,
    )
