"""The one-call large-batch recipe: LARS + linear LR scaling + warmup + cosine, checked against
the same pieces assembled by hand and against the schedule's defining values."""

from __future__ import annotations

import math

import numpy as np
import pytest

import phalanx
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.optim import LARS, SGD, large_batch_optimizer
from phalanx.optim.lr_scheduler import scaled_warmup_cosine


def model(seed=0):
    phalanx.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(36, 5))


def test_schedule_values_scale_warm_up_and_decay():
    opt, sched = large_batch_optimizer(
        model(), global_batch=2048, steps_per_epoch=10, epochs=20, base_lr=0.1, warmup_epochs=2
    )
    assert isinstance(opt, LARS)
    peak = 0.1 * 2048 / 256
    lrs = []
    for _ in range(200):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1)  # warmup starts at the unscaled rate
    assert lrs[20] == pytest.approx(peak)  # reached exactly at the end of warmup
    assert all(a <= b + 1e-12 for a, b in zip(lrs[:20], lrs[1:21]))
    mid = 20 + 90  # half-way through the cosine
    assert lrs[mid] == pytest.approx(peak * (1 + math.cos(math.pi * 90 / 180)) / 2)
    assert lrs[-1] < 0.01 * peak


def test_lars_excludes_biases_and_norm_parameters():
    opt, _ = large_batch_optimizer(model(), 512, 5, 2)
    group = opt.param_groups[0]
    assert group["trust_coefficient"] == 0.001 and group["weight_decay"] == 5e-4
    assert group.get("lars_exclude") is None  # the dim() <= 1 rule of LARS applies


def test_training_matches_the_pieces_assembled_by_hand():
    rng = np.random.default_rng(0)
    x = phalanx.tensor(rng.standard_normal((8, 3, 5, 5)).astype(np.float32))
    y = phalanx.tensor(rng.integers(0, 5, 8))

    def run(make):
        m = model()
        opt, sched = make(m)
        for _ in range(6):
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
            sched.step()
        return [p.detach().numpy() for p in m.parameters()]

    def by_hand(m):
        opt = LARS(m.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-4)
        return opt, scaled_warmup_cosine(
            opt, 1024, warmup_steps=3, total_steps=12, reference_batch=256, base_lr=0.2
        )

    def one_call(m):
        return large_batch_optimizer(
            m, 1024, steps_per_epoch=4, epochs=3, base_lr=0.2, warmup_epochs=0.75, weight_decay=1e-4
        )

    for a, b in zip(run(by_hand), run(one_call)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_sgd_variant_decays_only_weights():
    opt, _ = large_batch_optimizer(model(), 256, 5, 2, optimizer="sgd")
    assert isinstance(opt, SGD)
    decays = sorted((g["weight_decay"], len(g["params"])) for g in opt.param_groups)
    assert decays == [(0.0, 4), (5e-4, 2)]  # conv/linear weights vs biases and BN


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(global_batch=0, steps_per_epoch=1, epochs=1), "must be positive"),
        (dict(global_batch=8, steps_per_epoch=1, epochs=1, optimizer="adam"), "'lars' or 'sgd'"),
        (dict(global_batch=8, steps_per_epoch=1, epochs=1, warmup_epochs=-1), "warmup_epochs"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        large_batch_optimizer(model(), **kwargs)
    with pytest.raises(ValueError, match="no parameters"):
        large_batch_optimizer([], 8, 1, 1)
