"""A rank's step time as `fixed + per_sample * samples`, fitted from its recent steps, and the
integer shares of a global batch that minimise the slowest rank's predicted step time.

Why a line and not a time per sample: part of every step does not grow with the batch
(Python, hooks, launching kernels, the exchange records). Charged to the samples, it makes a
rank with a small share look slow per sample, and shares proportional to such speeds keep
the small share small: equal ranks that noise once split 9/8/7 stay split, and a slow rank
converges to its right share only in steps too small to pass the hysteresis.

The fit is Theil-Sen (the median of the slopes between every two steps of different batch
sizes, then the median intercept): one step descheduled by the OS moves it as little as it
moved the median of the old estimator. It needs batches that differ (by at least
`MIN_SPREAD` of the largest, else the slope is noise). While they do not, the rank's last
fitted line is scaled to the steps seen since (a phone that throttles or recovers slows or
speeds both parts alike; its ratio is what one batch size cannot tell); before any fit, the
fixed part is taken as 0, the old estimator. Shares change only when the balancer moves
them, so a fit is available exactly when it matters: after a move, to judge the next one.
"""

from __future__ import annotations

import heapq
import math
import statistics

__all__ = [
    "StepModel",
    "effective_floors",
    "fit_step_time",
    "minimax_shares",
    "predicted_step",
    "worth_changing",
]

MIN_SPREAD = 0.2  # smallest batch at most 80% of the largest for a slope to be fitted
NOISE_SIGMAS = 2.5  # a gain must exceed this many standard errors of the noisiest rank's line
MAX_MARGIN = 0.3  # ... but a gain of 30% of the step is never called noise


def fit_step_time(steps, prior=None) -> tuple[float, float, bool]:
    """(fixed seconds, seconds per sample, fitted) from `steps`, a list of (seconds, samples)
    with samples >= 1. `fitted` is False when the batches did not vary enough for a slope;
    then `prior` (an earlier (fixed, per_sample)) is scaled to these steps, or without one
    the fixed part is 0."""
    if not steps:
        raise ValueError("fit_step_time needs at least one (seconds, samples) step")
    sizes = [n for _, n in steps]
    if min(sizes) <= (1.0 - MIN_SPREAD) * max(sizes):
        slopes = [
            (t2 - t1) / (n2 - n1)
            for i, (t1, n1) in enumerate(steps)
            for t2, n2 in steps[i + 1 :]
            if n1 != n2
        ]
        slope = statistics.median(slopes)
        if slope > 0:
            fixed = statistics.median(t - slope * n for t, n in steps)
            if fixed >= 0:
                return fixed, slope, True
    if prior is not None:
        scale = statistics.median(t / (prior[0] + prior[1] * n) for t, n in steps)
        return prior[0] * scale, prior[1] * scale, False
    return 0.0, statistics.median(t / n for t, n in steps), False


class StepModel:
    """One rank's recent steps and the line through them, refitted at every step. The last
    fitted line outlives the window: a rank whose batch has stopped changing keeps its
    shape, scaled to its recent steps."""

    def __init__(self, window: int):
        self.window = window
        self.steps: list[tuple[float, int]] = []
        self.prior: tuple[float, float] | None = None  # the last fitted line
        self._line: tuple[float, float] | None = None

    def add(self, seconds: float, samples: int) -> None:
        self.steps = (self.steps + [(float(seconds), int(samples))])[-self.window :]
        fixed, per_sample, fitted = fit_step_time(self.steps, self.prior)
        if fitted:
            self.prior = (fixed, per_sample)
        self._line = (fixed, per_sample)

    def fit(self) -> tuple[float, float] | None:
        """(fixed, per_sample) or None before the first step."""
        return self._line

    def noise(self) -> float:
        """How far a single step strays from the line: the median of |time / line - 1| over
        the window (0 with fewer than 3 steps, too few to tell)."""
        if self._line is None or len(self.steps) < 3:
            return 0.0
        a, b = self._line
        return statistics.median(abs(t / (a + b * n) - 1.0) for t, n in self.steps)


def predicted_step(shares, fixed, per_sample) -> float:
    """The step time `shares` would give: the slowest rank's `fixed + per_sample * share`."""
    return max(a + b * s for s, a, b in zip(shares, fixed, per_sample))


def minimax_shares(fixed, per_sample, total: int, caps, floors=None) -> list[int]:
    """Integer shares summing to `total`, each in [floor, cap], that minimise the slowest
    rank's predicted step time: start every rank at its floor (1 unless given; a cap below
    it wins) and give each further sample to the rank that would then finish first (greedy
    is optimal for a maximum of increasing costs). Ties go to the lower rank, so every rank
    computes the same list."""
    n = len(fixed)
    floors = effective_floors(floors, caps, total)
    if n > total or sum(caps) < total:
        raise ValueError(
            f"cannot split a global batch of {total} over {n} ranks with at least 1 sample each "
            f"and at most max_samples_per_rank={list(caps)} (sum {sum(caps)})"
        )
    shares = list(floors)
    heap = [
        (fixed[r] + per_sample[r] * (shares[r] + 1), r) for r in range(n) if caps[r] > shares[r]
    ]
    heapq.heapify(heap)
    for _ in range(total - sum(shares)):
        _, r = heapq.heappop(heap)
        shares[r] += 1
        if shares[r] < caps[r]:
            heapq.heappush(heap, (fixed[r] + per_sample[r] * (shares[r] + 1), r))
    return shares


def effective_floors(floors, caps, total: int) -> list[int]:
    """Each rank's least share: its floor (min_samples_per_rank; 1 when None), lowered to its
    cap (memory is the harder limit), and 1 for every rank when the floors together exceed the
    global batch (an elastic job that shrank it): a floor keeps a model that cannot train on
    one sample (BatchNorm on a 1x1 map) working where the batch allows it."""
    n = len(caps)
    floors = (
        [1] * n if floors is None else [max(1, min(int(f), int(c))) for f, c in zip(floors, caps)]
    )
    return floors if sum(floors) <= total else [1] * n


def worth_changing(current, proposal, fixed, per_sample, noise, hysteresis, window) -> bool:
    """Whether `proposal` predicts a step shorter than `current` by more than the hysteresis
    plus what measurement noise alone could show: NOISE_SIGMAS standard errors of the
    noisiest rank's line (its steps' relative scatter `noise` over sqrt(window) steps),
    at most MAX_MARGIN. On a quiet phone the hysteresis decides; on a machine whose other
    jobs jitter every step by 25%, a 10% "gain" is noise and equal ranks keep equal shares."""
    if proposal == current:
        return False
    margin = min(hysteresis + NOISE_SIGMAS * max(noise) / math.sqrt(window), MAX_MARGIN)
    new = predicted_step(proposal, fixed, per_sample)
    return new <= (1.0 - margin) * predicted_step(current, fixed, per_sample)
