"""The balancer's step-time model (nn/parallel/_step_model.py) on synthetic timings: every
step costs `fixed + per_sample * samples` plus noise. The fit recovers the line; the
decision rule (minimax shares, hysteresis confirmed twice, as in Balancer._decide) keeps
equal ranks at equal shares and moves unequal ranks to the shares that equalise their step
times. The control, the old estimator (time / samples), leaves them where noise or its own
bias put them: that is the churn and the shortfall this model fixes."""

from __future__ import annotations

import random

import pytest

from phalanx.nn.parallel._step_model import (
    StepModel,
    effective_floors,
    fit_step_time,
    minimax_shares,
    predicted_step,
    worth_changing,
)


def test_fit_recovers_fixed_and_per_sample_cost_despite_one_outlier():
    steps = [(0.02 + 0.003 * n, n) for n in (16, 12, 20, 16)] + [(0.5, 14)]  # descheduled
    fixed, per_sample, fitted = fit_step_time(steps)
    assert fitted
    assert fixed == pytest.approx(0.02, rel=1e-6) and per_sample == pytest.approx(0.003)


def test_without_varied_batches_the_last_line_is_scaled_to_the_steps():
    steps = [(0.02 + 0.003 * 16, 16)] * 3
    assert fit_step_time(steps) == (0.0, pytest.approx(0.068 / 16), False)  # old estimator
    fixed, per_sample, fitted = fit_step_time(steps, prior=(0.02, 0.003))
    assert not fitted and (fixed, per_sample) == (pytest.approx(0.02), pytest.approx(0.003))
    # the rank became twice as fast (a throttled phone recovered): both parts halve
    fixed, per_sample, _ = fit_step_time([(0.023, 1)] * 3, prior=(0.04, 0.006))
    assert (fixed, per_sample) == (pytest.approx(0.02), pytest.approx(0.003))
    # batches 8 and 9 differ by too little for a slope: no fit from noise
    assert not fit_step_time([(0.1, 8), (0.2, 9)])[2]


def test_model_remembers_the_fit_once_the_batch_stops_changing():
    m = StepModel(window=3)
    for n in (16, 16, 10, 10, 10, 10):  # the last three all 10: no slope in the window
        m.add(0.05 + 0.002 * n, n)
    fixed, per_sample = m.fit()
    assert fixed == pytest.approx(0.05) and per_sample == pytest.approx(0.002)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least one"):
        fit_step_time([])
    with pytest.raises(ValueError, match=r"max_samples_per_rank=\[2, 2\] \(sum 4\)"):
        minimax_shares([0, 0], [1, 1], 5, [2, 2])


def test_minimax_shares_equalise_step_times_within_bounds():
    assert minimax_shares([0, 0, 0], [1, 1, 1], 32, [32] * 3) == [11, 11, 10]
    # the fixed part counts: rank 1 pays 8 samples' worth of overhead, so it takes 8 fewer
    assert minimax_shares([0.0, 8.0], [1.0, 1.0], 32, [32, 32]) == [20, 12]
    assert minimax_shares([0, 0], [1, 1000], 32, [32, 32]) == [31, 1]  # minimum one
    assert minimax_shares([0, 0, 0], [1, 3, 3], 30, [10, 30, 30]) == [10, 10, 10]  # cap
    assert predicted_step([20, 12], [0.0, 8.0], [1.0, 1.0]) == 20.0


def test_minimax_shares_keep_each_ranks_floor_where_the_batch_allows():
    assert minimax_shares([0, 0], [1, 1000], 32, [32, 32], [2, 2]) == [30, 2]
    assert minimax_shares([0, 0], [1, 1000], 32, [32, 32], [1, 4]) == [28, 4]  # per rank
    assert minimax_shares([0, 0], [1000, 1], 32, [1, 32], [2, 2]) == [1, 31]  # a cap wins
    # floors above the global batch: every rank's least share is 1 again (an elastic
    # job that shrank its batch keeps training)
    assert minimax_shares([0, 0, 0], [1, 1000, 1000], 5, [5] * 3, [2, 2, 2]) == [3, 1, 1]
    assert effective_floors(None, [8, 8], 16) == [1, 1]


# ------------------------------------------------------------------ a simulated balancer


def simulate(lines, total, steps, estimator, noise=0.05, slow=None, interval=5, seed=1):
    """Runs the balancer's decision loop over ranks whose true step time is `fixed +
    per_sample * share`, times (1 + uniform noise); `slow` (rank, factor, first, last) makes
    one rank that much slower for a stretch of steps. `estimator` 'line' is the model;
    'ratio' is the old estimator and rule (median time per sample, no fixed part, the
    hysteresis alone). Returns the shares of every step."""
    rng = random.Random(seed)
    n = len(lines)
    shares = minimax_shares([0] * n, [1] * n, total, [total] * n)  # equal
    models = [StepModel(window=5) for _ in range(n)]
    favoured, history = False, []
    for step in range(1, steps + 1):
        history.append(list(shares))
        for r, (a, b) in enumerate(lines):
            factor = 1 + rng.uniform(-noise, noise)
            if slow and r == slow[0] and slow[2] <= step <= slow[3]:
                factor *= slow[1]
            models[r].add((a + b * shares[r]) * factor, shares[r])
        if step % interval:
            continue
        if estimator == "line":
            fixed, per_sample = zip(*(m.fit() for m in models))
            spread = [m.noise() for m in models]
        else:
            fixed, spread = [0.0] * n, [0.0] * n
            per_sample = [sorted(t / s for t, s in m.steps)[len(m.steps) // 2] for m in models]
        proposal = minimax_shares(fixed, per_sample, total, [total] * n)
        better = worth_changing(shares, proposal, fixed, per_sample, spread, 0.1, 5)
        shares, favoured = (proposal, False) if better and favoured else (shares, better)
    return history


def test_noisy_steps_widen_the_margin_a_gain_must_pass():
    fixed, per_sample = [0.0, 0.0], [1.0, 1.0]
    # [14, 18] -> [16, 16] predicts 18 -> 16: 11% shorter
    assert worth_changing([14, 18], [16, 16], fixed, per_sample, [0.0, 0.0], 0.1, 5)
    assert not worth_changing([14, 18], [16, 16], fixed, per_sample, [0.0, 0.1], 0.1, 5)
    assert not worth_changing([16, 16], [16, 16], fixed, per_sample, [0.0, 0.0], 0.0, 5)
    # a gain of more than 40% of the step passes however noisy the steps
    assert worth_changing([2, 30], [16, 16], fixed, per_sample, [5.0, 5.0], 0.1, 5)
    m = StepModel(window=5)
    for t in (1.0, 1.2, 0.8, 1.0, 1.1):
        m.add(t, 10)
    assert m.noise() == pytest.approx(0.1)


def test_equal_ranks_on_a_jittery_machine_keep_equal_shares():
    """Steps jittered by +-25% (other jobs on the machine): the noise margin keeps equal
    ranks at equal shares over 100 steps; the hysteresis alone lets noise move them."""
    lines = [(0.02, 0.002)] * 3
    moved = {}
    for estimator in ("line", "ratio"):
        moved[estimator] = sum(
            any(max(s) - min(s) > 1 for s in simulate(lines, 48, 100, estimator, 0.25, seed=k))
            for k in range(20)
        )
    assert moved["line"] == 0 and moved["ratio"] > 5, moved


def slowest(lines, shares) -> float:
    return max(a + b * s for (a, b), s in zip(lines, shares))


def test_equal_ranks_with_a_large_fixed_cost_keep_equal_shares():
    """Three equal ranks whose fixed cost is 2.5x the batch's (a small model on 8 samples):
    over 100 steps with 5% noise the shares never leave 16/16/16 (many seeds)."""
    lines = [(0.02, 0.001)] * 3
    for seed in range(20):
        history = simulate(lines, 48, 100, "line", seed=seed)
        assert all(max(s) - min(s) <= 1 for s in history), (seed, history)


def test_equal_ranks_knocked_apart_return_near_equal_shares():
    """Rank 2 is twice as slow for steps 3-30 (another job on its phone), then equal again:
    the line model moves samples away and back until the step is within the hysteresis
    (10%) of equal shares'; the old estimator stays further off, since the rank with fewer
    samples looks slower per sample by the fixed cost it pays on fewer samples."""
    lines = [(0.04, 0.001)] * 3
    best = slowest(lines, [16, 16, 16])
    for estimator, back in (("line", True), ("ratio", False)):
        history = simulate(lines, 48, 90, estimator, noise=0.02, slow=(2, 2.0, 3, 30))
        assert min(s[2] for s in history) < 12, (estimator, history)  # it did move
        final = history[-1]
        assert (slowest(lines, final) <= 1.1 * best) == back, (estimator, final)


def test_unequal_ranks_converge_to_equal_step_times():
    """4 phones at 0.6, 0.6, 0.3 and 0.15 of a core, each with a fixed cost that also scales
    with its speed: the line model ends within 15% of the best possible step time; the old
    estimator stops further from it (its predictions charge the fixed cost per sample)."""
    caps = [0.6, 0.6, 0.3, 0.15]
    lines = [(0.03 / c, 0.004 / c) for c in caps]
    total = 64
    best = slowest(lines, minimax_shares(*zip(*lines), total, [total] * 4))
    ends = {}
    for estimator in ("line", "ratio"):
        history = simulate(lines, total, 80, estimator, noise=0.03)
        ends[estimator] = slowest(lines, history[-1])
    assert ends["line"] <= 1.15 * best, (ends, best)
    assert ends["ratio"] > ends["line"], (ends, best)
