"""OneCycleLR, CosineAnnealingWarmRestarts and ReduceLROnPlateau against torch, step for step
(learning rates and the cycled momentum/beta1 of every param group), state_dict round trips
and bad arguments."""

import math
import warnings

import pytest

import phalanx
import phalanx.optim as px_optim
from phalanx.optim import lr_scheduler as px_sched

torch = pytest.importorskip("torch")
th_sched = torch.optim.lr_scheduler

LRS = (0.1, 0.03)  # two param groups with different base rates


def optimizer(lib, name="SGD", lrs=LRS):
    optim = px_optim if lib is phalanx else torch.optim
    groups = [{"params": [lib.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    kwargs = dict(momentum=0.9) if name in ("SGD", "RMSprop") else {}
    return getattr(optim, name)(groups, lr=lrs[0], **kwargs)


def hyper(opt):
    """Everything a scheduler may change, per group."""
    return [(g["lr"], g.get("momentum"), g.get("betas")) for g in opt.param_groups]


def assert_same(px_opt, th_opt, px_s, th_s, where):
    for (pl, pm, pb), (tl, tm, tb) in zip(hyper(px_opt), hyper(th_opt)):
        assert math.isclose(pl, tl, rel_tol=1e-12, abs_tol=1e-15), (where, pl, tl)
        assert (pm is None) == (tm is None) and (pm is None or math.isclose(pm, tm)), where
        assert (pb is None) == (tb is None) and (pb is None or math.isclose(pb[0], tb[0])), where
    assert px_s.get_last_lr() == pytest.approx(th_s.get_last_lr(), rel=1e-12), where


ONE_CYCLE = {
    "cos": dict(max_lr=1.0, total_steps=40),
    "linear-three-phase": dict(
        max_lr=[0.5, 0.2], total_steps=30, anneal_strategy="linear", three_phase=True
    ),
    "epochs-steps": dict(max_lr=0.3, epochs=4, steps_per_epoch=7, pct_start=0.25),
    "no-momentum": dict(max_lr=0.3, total_steps=20, cycle_momentum=False, div_factor=10.0),
    "momentum-lists": dict(
        max_lr=0.4, total_steps=25, base_momentum=[0.8, 0.7], max_momentum=[0.9, 0.99]
    ),
}


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "RMSprop"])
@pytest.mark.parametrize("case", list(ONE_CYCLE))
def test_one_cycle_matches_torch(case, opt_name):
    kwargs = ONE_CYCLE[case]
    px_opt, th_opt = optimizer(phalanx, opt_name), optimizer(torch, opt_name)
    px_s = px_sched.OneCycleLR(px_opt, **kwargs)
    th_s = th_sched.OneCycleLR(th_opt, **kwargs)
    total = px_s.total_steps
    assert_same(px_opt, th_opt, px_s, th_s, "after construction")
    for step in range(total):
        px_opt.step()
        th_opt.step()
        px_s.step()
        th_s.step()
        assert_same(px_opt, th_opt, px_s, th_s, f"step {step + 1}")
    assert px_opt.param_groups[0]["lr"] < px_opt.param_groups[0]["initial_lr"]


def test_one_cycle_past_total_steps_raises():
    px_s = px_sched.OneCycleLR(optimizer(phalanx), max_lr=0.1, total_steps=3)
    for _ in range(3):
        px_s.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. .* total steps is 3"):
        px_s.step()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(max_lr=0.1), "total_steps OR"),
        (dict(max_lr=0.1, total_steps=0), "total_steps, but got 0"),
        (dict(max_lr=0.1, epochs=2, steps_per_epoch=-1), "steps_per_epoch, but got -1"),
        (dict(max_lr=0.1, total_steps=5, pct_start=1.5), "pct_start, but got 1.5"),
        (dict(max_lr=0.1, total_steps=5, anneal_strategy="exp"), "instead got exp"),
        (dict(max_lr=[0.1, 0.2, 0.3], total_steps=5), "max_lr has 3 values, param_groups has 2"),
    ],
)
def test_one_cycle_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        px_sched.OneCycleLR(optimizer(phalanx), **kwargs)


def test_one_cycle_needs_momentum_to_cycle():
    opt = px_optim.Adagrad([phalanx.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="must support momentum or beta1"):
        px_sched.OneCycleLR(opt, max_lr=0.1, total_steps=5)
    px_sched.OneCycleLR(opt, max_lr=0.1, total_steps=5, cycle_momentum=False)


WARM_RESTARTS = {
    "T0=5": dict(T_0=5),
    "T0=3-mult2-eta": dict(T_0=3, T_mult=2, eta_min=1e-3),
}


@pytest.mark.parametrize("case", list(WARM_RESTARTS))
def test_warm_restarts_matches_torch(case):
    kwargs = WARM_RESTARTS[case]
    px_opt, th_opt = optimizer(phalanx), optimizer(torch)
    px_s = px_sched.CosineAnnealingWarmRestarts(px_opt, **kwargs)
    th_s = th_sched.CosineAnnealingWarmRestarts(th_opt, **kwargs)
    for epoch in range(30):
        px_opt.step()
        th_opt.step()
        px_s.step()
        th_s.step()
        assert_same(px_opt, th_opt, px_s, th_s, f"epoch {epoch + 1}")


@pytest.mark.parametrize("case", list(WARM_RESTARTS))
def test_warm_restarts_fractional_epochs_match_torch(case):
    """The per-batch idiom: scheduler.step(epoch + i / iters), then plain steps again."""
    kwargs = WARM_RESTARTS[case]
    px_opt, th_opt = optimizer(phalanx), optimizer(torch)
    px_s = px_sched.CosineAnnealingWarmRestarts(px_opt, **kwargs)
    th_s = th_sched.CosineAnnealingWarmRestarts(th_opt, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(12):
            for i in range(4):
                px_s.step(epoch + i / 4)
                th_s.step(epoch + i / 4)
                assert_same(px_opt, th_opt, px_s, th_s, f"epoch {epoch + i / 4}")
    for _ in range(5):
        px_s.step()
        th_s.step()
        assert_same(px_opt, th_opt, px_s, th_s, "plain step after fractional ones")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(T_0=0), "positive integer T_0, but got 0"),
        (dict(T_0=2.5), "positive integer T_0, but got 2.5"),
        (dict(T_0=5, T_mult=0), "T_mult >= 1, but got 0"),
        (dict(T_0=5, eta_min="0"), "eta_min, but got 0"),
    ],
)
def test_warm_restarts_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        px_sched.CosineAnnealingWarmRestarts(optimizer(phalanx), **kwargs)
    s = px_sched.CosineAnnealingWarmRestarts(optimizer(phalanx), T_0=3)
    with pytest.raises(ValueError, match="non-negative epoch, but got -1"):
        s.step(-1)


METRICS = [1.0, 0.9, 0.95, 0.95, 0.91, 0.9, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] * 3

PLATEAU = {
    "defaults-patience2": dict(patience=2),
    "max-abs-cooldown": dict(mode="max", threshold=0.05, threshold_mode="abs", cooldown=2),
    "min-abs-minlr": dict(factor=0.5, patience=1, threshold_mode="abs", min_lr=0.02),
    "max-rel-minlr-list": dict(mode="max", patience=0, min_lr=[0.05, 0.001], factor=0.3),
}


@pytest.mark.parametrize("case", list(PLATEAU))
def test_reduce_on_plateau_matches_torch(case):
    kwargs = PLATEAU[case]
    px_opt, th_opt = optimizer(phalanx), optimizer(torch)
    px_s = px_sched.ReduceLROnPlateau(px_opt, **kwargs)
    th_s = th_sched.ReduceLROnPlateau(th_opt, **kwargs)
    assert isinstance(px_s, px_sched.LRScheduler)
    reductions = 0
    for epoch, metric in enumerate(METRICS):
        before = px_opt.param_groups[0]["lr"]
        px_s.step(phalanx.tensor(metric))  # a 0-d tensor, as a validation loss is
        th_s.step(torch.tensor(metric))
        reductions += px_opt.param_groups[0]["lr"] < before
        assert_same(px_opt, th_opt, px_s, th_s, f"epoch {epoch}")
        assert px_s.num_bad_epochs == th_s.num_bad_epochs
        assert px_s.cooldown_counter == th_s.cooldown_counter
    assert reductions > 0


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(factor=1.0), ValueError, "Factor should be < 1.0"),
        (dict(mode="mean"), ValueError, "mode 'mean' is unknown"),
        (dict(threshold_mode="pct"), ValueError, "threshold mode 'pct' is unknown"),
        (dict(min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
    ],
)
def test_reduce_on_plateau_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        px_sched.ReduceLROnPlateau(optimizer(phalanx), **kwargs)
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        px_sched.ReduceLROnPlateau([])


def _resume(make, steps_before, steps_after, step):
    """Runs `steps_before` steps, copies the scheduler through its state_dict into a fresh
    optimizer/scheduler pair, then checks both give equal rates for `steps_after` steps."""
    opt = optimizer(phalanx)
    sched = make(opt)
    for i in range(steps_before):
        step(sched, i)
    opt2 = optimizer(phalanx)
    opt2.load_state_dict(opt.state_dict())
    sched2 = make(opt2)
    sched2.load_state_dict(sched.state_dict())
    for i in range(steps_after):
        step(sched, steps_before + i)
        step(sched2, steps_before + i)
        assert hyper(opt) == hyper(opt2)
        assert sched.get_last_lr() == sched2.get_last_lr()


def test_state_dict_round_trips():
    _resume(
        lambda o: px_sched.OneCycleLR(o, max_lr=0.5, total_steps=30),
        10,
        20,
        lambda s, i: s.step(),
    )
    _resume(
        lambda o: px_sched.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
        7,
        15,
        lambda s, i: s.step(),
    )
    _resume(
        lambda o: px_sched.ReduceLROnPlateau(o, patience=1, cooldown=1),
        6,
        len(METRICS) - 6,
        lambda s, i: s.step(METRICS[i]),
    )
