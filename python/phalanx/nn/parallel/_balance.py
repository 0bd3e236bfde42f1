"""The balancer behind DistributedDataParallel(balance=sampler): shares of the global batch
proportional to each rank's measured speed.

Each synchronised step, a rank times its own computation: from the start of forward to the
end of backward, minus the time backward spent waiting for communication (the all-reduce of
the other ranks' gradients says nothing about this rank's speed). A step has a part that
does not depend on the batch (Python, hooks, launching kernels, the optimizer's own work is
outside) and a part per sample, so each rank models its step time as
`fixed + per_sample * samples`, fitted over its last few steps (step_model.py). Dividing the
step time by the batch instead would charge the fixed part to each sample, more so the
smaller the share: a rank given a few samples fewer would look slower per sample and keep its
smaller share, and equal ranks would drift apart on noise and stay apart.

Agreement without a coordinator: at every forward each rank starts an all-gather of a small
record (estimate, last step time, batches drawn, telemetry, memory cap), which overlaps the
forward pass. At the end of backward every rank holds the same records, so every rank
computes the same shares from them, deterministically, and schedules them in its sampler for
the first step no rank has drawn yet. Every `interval` steps (or at once when a rank's clock
or temperature hints at throttling) a proposal is computed: the integer shares that minimise
the slowest rank's predicted step time, `max_r fixed_r + per_sample_r * share_r`. It is
adopted only if that prediction is shorter than the current shares' (same model) by at
least `hysteresis` plus a margin for the measured noise of the step times, at two
evaluations in a row (one slow stretch of an OS scheduler is not a
slower phone), so noise on equal ranks does not churn the shares.

The run-time weighting of the wimpy-smartphone-nodes paper uses the same measurements: equal
batches, and each rank's gradient weighted by its speed relative to the others. Unlike
balanced shares that weighting does not give the gradient of the global batch; see
docs/heterogeneous.md.
"""

from __future__ import annotations

import statistics
import time
from collections import deque

import numpy as np

from ... import _C
from ... import distributed as dist
from ._step_model import StepModel, effective_floors, minimax_shares, worth_changing
from ._telemetry import Telemetry

__all__ = ["Balancer", "proportional_shares"]

# The record each rank contributes to the all-gather, one float32 per field (exact for
# the counts; the times need no more).
_FIELDS = (
    "fixed",
    "per_sample",
    "noise",
    "step_time",
    "local_batch",
    "drawn",
    "hint",
    "khz",
    "temp_c",
    "cap",
    "floor",
)
_NONE = -1.0


def proportional_shares(speeds, total: int, caps=None, floors=None) -> list[int]:
    """Integer shares of `total` proportional to `speeds`, each at least its floor (1 unless
    given; effective_floors) and at most its cap; largest remainders, ties to the lower rank,
    so every rank computes the same list."""
    n = len(speeds)
    caps = [total] * n if caps is None else [int(c) for c in caps]
    if n > total or sum(caps) < total:
        raise ValueError(
            f"cannot split a global batch of {total} over {n} ranks with at least 1 sample each "
            f"and at most max_samples_per_rank={caps} (sum {sum(caps)})"
        )
    floors = effective_floors(floors, caps, total)
    fixed: dict[int, int] = {}
    while True:  # water filling: ranks whose ideal share passes a bound get the bound
        free = [r for r in range(n) if r not in fixed]
        rest = total - sum(fixed.values())
        weight = sum(speeds[r] for r in free)
        ideal = {r: rest * speeds[r] / weight for r in free}
        over = [r for r in free if ideal[r] > caps[r]]
        under = [r for r in free if ideal[r] < floors[r]]
        if over:
            fixed.update({r: caps[r] for r in over})
        elif under:
            fixed.update({r: floors[r] for r in under})
        else:
            break
    shares = [fixed.get(r, 0) for r in range(n)]
    for r in free:
        shares[r] = min(int(ideal[r]), caps[r])
    left = total - sum(shares)
    order = sorted(free, key=lambda r: (-(ideal[r] - int(ideal[r])), r))
    while left > 0:
        for r in order:
            if left and shares[r] < caps[r]:
                shares[r] += 1
                left -= 1
    return shares


class Balancer:
    """Measures, exchanges and decides; see the module docstring.

    Args:
        sampler: the BalancedDistributedSampler whose shares it sets, or None for the
            run-time weighting (equal batches).
        interval: steps between proposals.
        hysteresis: a proposal must shorten the predicted step time by this fraction.
        window: recent steps a rank fits its step-time line to.
        warmup: first steps not measured (they create oneDNN primitives and caches).
        max_samples_per_rank: this rank's cap (ranks may pass different caps).
        min_samples_per_rank: this rank's least share (ranks may pass different floors; all
            are exchanged, so every rank decides alike), where the global batch allows it.
        telemetry_root: where /sys is (tests point it at a fake tree); None disables it.
        other_waits: a callable giving the seconds spent so far in other collectives inside
            forward and backward (SyncBatchNorm's), excluded from compute like our own waits.
    """

    def __init__(
        self,
        sampler,
        group,
        world_size: int,
        rank: int,
        *,
        interval: int = 5,
        hysteresis: float = 0.1,
        window: int = 5,
        warmup: int = 1,
        max_samples_per_rank: int | None = None,
        min_samples_per_rank: int = 1,
        telemetry_root: str | None = "/",
        other_waits=None,
    ):
        for name, value, low in (("balance_interval", interval, 1), ("window", window, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not 0.0 <= float(hysteresis) < 1.0:
            raise ValueError(f"balance_hysteresis must be in [0, 1), got {hysteresis!r}")
        if max_samples_per_rank is not None and (
            isinstance(max_samples_per_rank, bool)
            or not isinstance(max_samples_per_rank, int)
            or max_samples_per_rank < 1
        ):
            raise ValueError(
                f"max_samples_per_rank must be a positive int or None, got {max_samples_per_rank!r}"
            )
        if (
            isinstance(min_samples_per_rank, bool)
            or not isinstance(min_samples_per_rank, int)
            or min_samples_per_rank < 1
        ):
            raise ValueError(
                f"min_samples_per_rank must be a positive int, got {min_samples_per_rank!r}"
            )
        if max_samples_per_rank is not None and min_samples_per_rank > max_samples_per_rank:
            raise ValueError(
                f"min_samples_per_rank={min_samples_per_rank} is above "
                f"max_samples_per_rank={max_samples_per_rank}"
            )
        if sampler is not None:
            for attr in ("set_shares", "shares", "steps_drawn", "global_batch_size"):
                if not hasattr(sampler, attr):
                    raise TypeError(
                        "balance= takes a phalanx.utils.data.BalancedDistributedSampler, got "
                        f"{type(sampler).__name__} (no {attr})"
                    )
            if sampler.num_replicas != world_size or sampler.rank != rank:
                raise ValueError(
                    f"balance=: the sampler is for rank {sampler.rank} of {sampler.num_replicas}, "
                    f"the process group has this process as rank {rank} of {world_size}"
                )
        self.sampler = sampler
        self._other_waits = other_waits or (lambda: 0.0)
        self._other_start = 0.0
        self._group = group
        self.world_size = world_size
        self.rank = rank
        self.interval = interval
        self.window = window
        self.hysteresis = float(hysteresis)
        self.warmup = warmup
        self.cap = max_samples_per_rank
        self.floor = min_samples_per_rank
        self.telemetry = Telemetry(telemetry_root) if telemetry_root is not None else None
        self.steps = 0  # synchronised steps finished
        self.changes: list[dict] = []  # every adopted change: step decided, first step, shares
        # Latest gathered records, by rank (identical on every rank).
        self.per_sample_times: list[float | None] = [None] * world_size  # at the local batch
        self.fixed_times: list[float | None] = [None] * world_size  # the line's two terms
        self.marginal_times: list[float | None] = [None] * world_size
        self.step_times: list[float | None] = [None] * world_size
        self.noises: list[float] = [0.0] * world_size  # each rank's relative step scatter
        self.local_batches: list[int | None] = [None] * world_size
        self.cpu_khz: list[float | None] = [None] * world_size
        self.temperatures: list[float | None] = [None] * world_size
        self.weights: list[float] | None = None  # run-time weighting, last used
        self._model = StepModel(window)  # (compute seconds, local batch) of recent steps
        self._clocks: deque = deque(maxlen=window)  # kHz at those steps, or None
        self._start = 0.0
        self._local = 0
        self._pending = None  # (gathered tensor, work) of this step's exchange
        self._gathered = None  # numpy (world, fields) once waited
        self._wait = 0.0  # seconds this step waited for the exchange inside backward
        self._favoured = False  # the previous evaluation favoured a change too

    # -- the rank's own measurement -----------------------------------------------------------

    def _estimate(self) -> tuple[float, float] | None:
        """(fixed seconds, seconds per sample) of this rank's step, or None unmeasured."""
        line = self._model.fit()
        if line is None:
            return None
        khz_now = self.telemetry.khz if self.telemetry is not None else None
        clocks = [k for k in self._clocks if k is not None]
        if khz_now and clocks:  # a clock that fell since the measurements: slower already
            scale = statistics.mean(clocks) / khz_now
            line = (line[0] * scale, line[1] * scale)
        return line

    def _record(self) -> np.ndarray:
        t = self.telemetry
        est = self._estimate()
        values = {
            "fixed": est[0] if est is not None else _NONE,
            "per_sample": est[1] if est is not None else _NONE,
            "noise": self._model.noise(),
            "step_time": self.step_times[self.rank] or _NONE,
            "local_batch": float(self._local),
            "drawn": float(self.sampler.steps_drawn) if self.sampler is not None else 0.0,
            "hint": 1.0 if t is not None and t.hint() else 0.0,
            "khz": t.khz if t is not None and t.khz is not None else _NONE,
            "temp_c": t.temp_c if t is not None and t.temp_c is not None else _NONE,
            "cap": float(self.cap) if self.cap is not None else _NONE,
            "floor": float(self.floor),
        }
        return np.array([values[f] for f in _FIELDS], dtype=np.float32)

    # -- one step -----------------------------------------------------------------------------

    def start_step(self, local_batch: int) -> None:
        """Called by forward of a synchronised step, just before the module runs."""
        if self._pending is not None:  # a forward without backward: finish its exchange
            self._pending[1].wait()
            self._pending = None
        if self.telemetry is not None:
            self.telemetry.sample()
        self._local = int(local_batch)
        mine = _C._from_numpy(self._record())
        every = _C.zeros([self.world_size, len(_FIELDS)], dtype=_C.dtype.float32)
        work = dist.all_gather_into_tensor(every, mine, group=self._group, async_op=True)
        self._pending = (every, work)
        self._gathered = None
        self._wait = 0.0
        self._other_start = self._other_waits()
        self._start = time.perf_counter()

    def _collect(self) -> np.ndarray:
        if self._gathered is None:
            every, work = self._pending
            start = time.perf_counter()
            work.wait()
            self._wait += time.perf_counter() - start
            self._pending = None
            self._gathered = every.numpy().reshape(self.world_size, len(_FIELDS)).copy()
            self._absorb(self._gathered)
        return self._gathered

    def _absorb(self, g: np.ndarray) -> None:
        col = {f: g[:, i] for i, f in enumerate(_FIELDS)}

        def opt(values):
            return [None if v == _NONE else float(v) for v in values]

        self.fixed_times = opt(col["fixed"])
        self.marginal_times = opt(col["per_sample"])
        self.step_times = opt(col["step_time"])
        self.noises = [float(v) for v in col["noise"]]
        self.local_batches = [int(v) for v in col["local_batch"]]
        self.per_sample_times = [
            None if a is None else a / max(n, 1) + b
            for a, b, n in zip(self.fixed_times, self.marginal_times, self.local_batches)
        ]
        self.cpu_khz = opt(col["khz"])
        self.temperatures = opt(col["temp_c"])

    def run_time_weight(self) -> float:
        """The wimpy-nodes weight of this rank's gradient: its speed relative to the sum of
        speeds (1 / world size until every rank has been measured)."""
        self._collect()
        if any(t is None for t in self.per_sample_times):
            self.weights = [1.0 / self.world_size] * self.world_size
        else:
            speeds = [1.0 / t for t in self.per_sample_times]
            total = sum(speeds)
            self.weights = [s / total for s in speeds]
        return self.weights[self.rank]

    def finish_step(self, backward_end: float, comm_wait: float) -> None:
        """Called after backward wrote the gradients: record this step, decide shares."""
        other = self._other_waits() - self._other_start
        compute = backward_end - self._start - comm_wait - self._wait - other
        g = self._collect()
        self.steps += 1
        mine = compute if compute > 0 else None
        if self.steps > self.warmup and mine is not None and self._local > 0:
            self._model.add(mine, self._local)
            self._clocks.append(self.telemetry.khz if self.telemetry is not None else None)
        own_step = mine
        if self.sampler is not None:
            self._decide(g)
        self.step_times[self.rank] = own_step  # reported by the next exchange

    def _decide(self, g: np.ndarray) -> None:
        col = {f: g[:, i] for i, f in enumerate(_FIELDS)}
        caps_raw = col["cap"].tolist()
        total = self.sampler.global_batch_size
        caps = [total if c == _NONE else int(c) for c in caps_raw]
        floors = [int(f) for f in col["floor"]]  # the share rules apply effective_floors
        at_step = int(col["drawn"].max())  # the first step no rank has drawn
        current = self.sampler.shares_at(at_step)  # hand-set changes count too
        over_cap = any(s > c for s, c in zip(current, caps))
        measured = not np.any(col["per_sample"] == _NONE)
        due = self.steps % self.interval == 0 or bool(np.any(col["hint"] > 0))
        if not over_cap and not (measured and due):
            return
        if measured:
            fixed, per_sample = col["fixed"].tolist(), col["per_sample"].tolist()
            proposal = minimax_shares(fixed, per_sample, total, caps, floors)
            # A clock that moved is a measurement, not timing noise: after a hint only the
            # hysteresis stands between the readings and a change.
            hinted = bool(np.any(col["hint"] > 0))
            noise = [0.0] * self.world_size if hinted else col["noise"].tolist()
            better = worth_changing(
                current, proposal, fixed, per_sample, noise, self.hysteresis, self.window
            )
        else:  # only a cap to enforce: equal shares within the caps
            proposal = proportional_shares([1.0] * self.world_size, total, caps, floors)
            better = False
        confirmed, self._favoured = better and self._favoured, better
        if self.telemetry is not None and (confirmed or over_cap or not better):
            # the hint is answered (adopted, or nothing to gain): new reference readings;
            # while a change waits for its confirmation the hint keeps the evaluation coming
            self.telemetry.rebased()
        if not (over_cap or confirmed):
            return
        self._favoured = False
        self.sampler.set_shares(proposal, at_step=at_step)
        self.changes.append({"step": self.steps, "at_step": at_step, "shares": list(proposal)})

    # -- reporting ------------------------------------------------------------------------------

    @property
    def shares(self) -> list[int] | None:
        """The shares of the next step (None for the run-time weighting)."""
        return None if self.sampler is None else self.sampler.shares

    @property
    def speeds(self) -> list[float | None]:
        """Samples per second of computation at each rank's current local batch, fixed part
        included (None until measured)."""
        return [None if t is None else 1.0 / t for t in self.per_sample_times]

    def ideal_step_time(self) -> float | None:
        """The global batch over the sum of speeds: the step time perfect shares would give."""
        if self.sampler is None or any(s is None for s in self.speeds):
            return None
        return self.sampler.global_batch_size / sum(self.speeds)

    def metrics(self) -> dict:
        """Everything measured and decided, as plain Python values (identical on every rank
        except the rank's own entries of the newest step, which the next exchange spreads)."""
        return {
            "step": self.steps,
            "shares": None if self.shares is None else list(self.shares),
            "speeds": self.speeds,
            "per_sample_times": list(self.per_sample_times),
            "fixed_times": list(self.fixed_times),
            "marginal_times": list(self.marginal_times),
            "noises": list(self.noises),
            "step_times": list(self.step_times),
            "local_batches": list(self.local_batches),
            "cpu_khz": list(self.cpu_khz),
            "temperatures": list(self.temperatures),
            "weights": None if self.weights is None else list(self.weights),
            "ideal_step_time": self.ideal_step_time(),
            "changes": [dict(c) for c in self.changes],
        }
