"""phalanx.optim.lr_scheduler against torch.optim.lr_scheduler, epoch by epoch, and the
large-batch helpers (linear scaling, warmup, cosine)."""

import math
import warnings

import pytest

import phalanx
import phalanx.optim as px_optim
from phalanx.optim import lr_scheduler as px_sched

torch = pytest.importorskip("torch")
th_sched = torch.optim.lr_scheduler

EPOCHS = 30
LRS = (0.1, 0.03)  # two param groups with different base rates


def optimizer(lib, lrs=LRS):
    optim = px_optim if lib is phalanx else torch.optim
    groups = [{"params": [lib.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0], momentum=0.9)


def half(epoch):
    return 0.5 ** (epoch // 4)


def decay(epoch):
    return 0.9**epoch


# Each entry builds one scheduler (or a list stepped together) given (module, optimizer).
SCHEDULES = {
    "StepLR": lambda S, o: S.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.3),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
    "CosineAnnealingLR-long": lambda S, o: S.CosineAnnealingLR(o, T_max=30),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=8),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=12, power=2.0),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=4),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.9),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lr_lambda=decay),
    "LambdaLR-per-group": lambda S, o: S.LambdaLR(o, lr_lambda=[decay, half]),
    "SequentialLR-warmup-cosine": lambda S, o: S.SequentialLR(
        o,
        [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=25)],
        milestones=[5],
    ),
    "SequentialLR-three": lambda S, o: S.SequentialLR(
        o,
        [
            S.ConstantLR(o, factor=0.2, total_iters=10),
            S.ExponentialLR(o, gamma=0.8),
            S.StepLR(o, step_size=3, gamma=0.5),
        ],
        milestones=[4, 12],
    ),
    "chained-StepLR-ExponentialLR": lambda S, o: [
        S.StepLR(o, step_size=5, gamma=0.5),
        S.ExponentialLR(o, gamma=0.95),
    ],
    "chained-MultiStep-Cosine": lambda S, o: [
        S.CosineAnnealingLR(o, T_max=12),
        S.MultiStepLR(o, milestones=[6, 15], gamma=0.1),
    ],
}


def trajectory(lib, make, epochs=EPOCHS):
    opt = optimizer(lib)
    S = px_sched if lib is phalanx else th_sched
    scheds = make(S, opt)
    scheds = scheds if isinstance(scheds, list) else [scheds]
    lrs = [list(scheds[-1].get_last_lr())]
    for _ in range(epochs):
        opt.step()  # no gradients: a no-op, but keeps torch's call-order check quiet
        for s in scheds:
            s.step()
        lrs.append(list(scheds[-1].get_last_lr()))
        assert lrs[-1] == [g["lr"] for g in opt.param_groups]
    return lrs


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch_every_epoch(name):
    got = trajectory(phalanx, SCHEDULES[name])
    want = trajectory(torch, SCHEDULES[name])
    assert len(got) == EPOCHS + 1
    for epoch, (g, w) in enumerate(zip(got, want)):
        assert g == pytest.approx(w, rel=1e-12, abs=1e-15), f"epoch {epoch}"


@pytest.mark.parametrize(
    "name",
    [
        "StepLR",
        "MultiStepLR",
        "CosineAnnealingLR",
        "LinearLR",
        "PolynomialLR",
        "ExponentialLR",
        "ConstantLR",
    ],
)
def test_closed_form_step_epoch_matches_torch(name):
    results = []
    for lib, S in ((phalanx, px_sched), (torch, th_sched)):
        opt = optimizer(lib)
        s = SCHEDULES[name](S, opt)
        seq = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in (3, 7, 1, 12, 29):
                s.step(epoch)
                seq.append(list(s.get_last_lr()))
        results.append(seq)
    for got, want in zip(*results):
        assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "name", ["StepLR", "CosineAnnealingLR", "SequentialLR-warmup-cosine", "LambdaLR"]
)
def test_scheduler_state_dict_resumes(name):
    opt = optimizer(phalanx)
    s = SCHEDULES[name](px_sched, opt)
    for _ in range(10):
        s.step()
    saved_opt, saved = opt.state_dict(), s.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 10

    opt2 = optimizer(phalanx)
    s2 = SCHEDULES[name](px_sched, opt2)
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved)
    for _ in range(20):
        s.step()
        s2.step()
        assert s2.get_last_lr() == s.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == s.get_last_lr()


def test_last_epoch_and_base_lrs():
    opt = optimizer(phalanx)
    s = px_sched.StepLR(opt, step_size=2)
    assert s.last_epoch == 0 and s.base_lrs == list(LRS)
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)
    s.step()
    s.step()
    assert s.last_epoch == 2
    assert s.get_last_lr() == pytest.approx([0.01, 0.003])


def test_resume_without_initial_lr_is_an_error():
    with pytest.raises(KeyError, match="initial_lr"):
        px_sched.StepLR(optimizer(phalanx), step_size=2, last_epoch=5)


def test_scheduler_argument_errors():
    opt = optimizer(phalanx)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        px_sched.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        px_sched.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        px_sched.LambdaLR(opt, lr_lambda=[decay])
    with pytest.raises(ValueError, match="one more scheduler than milestones"):
        px_sched.SequentialLR(opt, [px_sched.StepLR(opt, 2)], milestones=[3])


# ---- the large-batch recipe ------------------------------------------------------------------


def test_linear_scaling_lr():
    assert px_sched.linear_scaling_lr(0.1, 8192) == pytest.approx(3.2)
    assert px_sched.linear_scaling_lr(0.1, 1024, reference_batch=512) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="global_batch=0"):
        px_sched.linear_scaling_lr(0.1, 0)


def test_scaled_warmup_cosine_matches_torch_recipe():
    global_batch, warmup, total = 4096, 5, 30
    opt = optimizer(phalanx)
    sched = px_sched.scaled_warmup_cosine(opt, global_batch, warmup, total, eta_min=1e-4)
    scaled = [lr * global_batch / 256 for lr in LRS]
    assert [g["initial_lr"] for g in opt.param_groups] == pytest.approx(scaled)
    # The same schedule written out in torch: warm up from the unscaled rate (1/16 of scaled).
    th_opt = optimizer(torch, lrs=scaled)
    th = th_sched.SequentialLR(
        th_opt,
        [
            th_sched.LinearLR(th_opt, start_factor=256 / global_batch, total_iters=warmup),
            th_sched.CosineAnnealingLR(th_opt, T_max=total - warmup, eta_min=1e-4),
        ],
        milestones=[warmup],
    )
    assert sched.get_last_lr() == pytest.approx(list(LRS), rel=1e-12)  # starts unscaled
    for epoch in range(1, total + 1):
        opt.step()
        th_opt.step()
        sched.step()
        th.step()
        assert sched.get_last_lr() == pytest.approx(th.get_last_lr(), rel=1e-12), f"epoch {epoch}"
        if epoch == warmup:
            assert sched.get_last_lr() == pytest.approx(scaled, rel=1e-12)
    assert sched.get_last_lr() == pytest.approx([1e-4, 1e-4], rel=1e-9)


def test_scaled_warmup_cosine_with_explicit_base_lr_and_monotone_phases():
    opt = optimizer(phalanx)
    sched = px_sched.scaled_warmup_cosine(opt, 1024, warmup_steps=10, total_steps=50, base_lr=0.2)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(50):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[0] == pytest.approx(0.2) and lrs[10] == pytest.approx(0.8)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a > b for a, b in zip(lrs[10:50], lrs[11:51]))
    assert lrs[50] == pytest.approx(0.0, abs=1e-12)
    assert opt.param_groups[1]["lr"] == lrs[50]  # base_lr applies to every group
    with pytest.raises(ValueError, match="must exceed warmup_steps"):
        px_sched.scaled_warmup_cosine(optimizer(phalanx), 1024, 10, 10)


def test_warmup_then_matches_torch_sequential():
    opt = optimizer(phalanx)
    sched = px_sched.warmup_then(
        opt, 4, px_sched.StepLR(opt, step_size=5, gamma=0.5), start_factor=0.2
    )
    th_opt = optimizer(torch)
    th = th_sched.SequentialLR(
        th_opt,
        [
            th_sched.LinearLR(th_opt, start_factor=0.2, total_iters=4),
            th_sched.StepLR(th_opt, step_size=5, gamma=0.5),
        ],
        milestones=[4],
    )
    for epoch in range(EPOCHS):
        assert sched.get_last_lr() == pytest.approx(th.get_last_lr(), rel=1e-12), f"epoch {epoch}"
        opt.step()
        th_opt.step()
        sched.step()
        th.step()
    assert px_sched.warmup_then(opt, 0, sched) is sched


def test_scheduler_drives_the_optimizer_update():
    p = phalanx.tensor([1.0], requires_grad=True)
    opt = px_optim.SGD([p], lr=1.0)
    sched = px_sched.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = phalanx.ones(1)
        opt.step()
        sched.step()
    assert p.item() == pytest.approx(1.0 - (1.0 + 0.5 + 0.25))
    assert math.isclose(sched.get_last_lr()[0], 0.125)
