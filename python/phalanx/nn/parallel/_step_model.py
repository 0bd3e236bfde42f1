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
import statistics

__all__ = ["StepModel", "fit_step_time", "minimax_shares", "predicted_step"]

MIN_SPREAD = 0.2  # smallest batch at most 80% of the largest for a slope to be fitted


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


def predicted_step(shares, fixed, per_sample) -> float:
    """The step time `shares` would give: the slowest rank's `fixed + per_sample * share`."""
    return max(a + b * s for s, a, b in zip(shares, fixed, per_sample))


def minimax_shares(fixed, per_sample, total: int, caps) -> list[int]:
    """Integer shares summing to `total`, each in [1, cap], that minimise the slowest rank's
    predicted step time: start every rank at 1 and give each further sample to the rank
    that would then finish first (greedy is optimal for a maximum of increasing costs).
    Ties go to the lower rank, so every rank computes the same list."""
    n = len(fixed)
    if n > total or sum(caps) < total:
        raise ValueError(
            f"cannot split a global batch of {total} over {n} ranks with at least 1 sample each "
            f"and at most max_samples_per_rank={list(caps)} (sum {sum(caps)})"
        )
    shares = [1] * n
    heap = [(fixed[r] + per_sample[r] * 2, r) for r in range(n) if caps[r] > 1]
    heapq.heapify(heap)
    for _ in range(total - n):
        _, r = heapq.heappop(heap)
        shares[r] += 1
        if shares[r] < caps[r]:
            heapq.heappush(heap, (fixed[r] + per_sample[r] * (shares[r] + 1), r))
    return shares
