"""Everyday optimizer, scheduler and nn.utils idioms (issue 16, part B): each runs unchanged
under torch and phalanx; a few steps on a small seeded regression problem."""

import numpy as np

from ._registry import idiom


def _arr(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _model(torch):
    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for i, p in enumerate(m.parameters()):
            p.copy_(torch.tensor(_arr(tuple(p.shape), 10 + i, 0.5)))
    return m


def _loss(torch, model):
    x, y = torch.tensor(_arr((16, 4), 1)), torch.tensor(_arr((16, 2), 2))
    return torch.nn.functional.mse_loss(model(x), y)


def _train(torch, opt_name, steps=5, **kwargs):
    model = _model(torch)
    opt = getattr(torch.optim, opt_name)(model.parameters(), **kwargs)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss(torch, model)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, list(model.parameters())


TOL = dict(rtol=1e-4, atol=1e-5)


@idiom(**TOL)
def rmsprop_default(torch):
    return _train(torch, "RMSprop", lr=0.01)


@idiom(**TOL)
def rmsprop_momentum_centered(torch):
    return _train(torch, "RMSprop", lr=0.005, momentum=0.9, centered=True, weight_decay=1e-3)


@idiom(**TOL)
def rmsprop_alpha_eps(torch):
    return _train(torch, "RMSprop", lr=1e-3, alpha=0.9, eps=1e-6)


@idiom(**TOL)
def adagrad_default(torch):
    return _train(torch, "Adagrad", lr=0.1)


@idiom(**TOL)
def adagrad_lr_decay_initial_accumulator(torch):
    return _train(torch, "Adagrad", lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)


@idiom(**TOL)
def adadelta_mnist_example_settings(torch):
    return _train(torch, "Adadelta", lr=1.0)


@idiom(**TOL)
def adadelta_rho_weight_decay(torch):
    return _train(torch, "Adadelta", lr=0.5, rho=0.95, weight_decay=1e-4)


@idiom(**TOL)
def sgd_momentum_nesterov(torch):
    return _train(torch, "SGD", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)


@idiom(**TOL)
def adam_and_adamw(torch):
    return _train(torch, "Adam", lr=1e-2)[0], _train(torch, "AdamW", lr=1e-2, weight_decay=0.1)[0]


@idiom(**TOL)
def param_groups_different_lrs(torch):
    model = _model(torch)
    opt = torch.optim.RMSprop(
        [
            {"params": model[0].parameters()},
            {"params": model[2].parameters(), "lr": 1e-3, "momentum": 0.5},
        ],
        lr=1e-2,
    )
    for _ in range(3):
        opt.zero_grad()
        _loss(torch, model).backward()
        opt.step()
    return (
        [g["lr"] for g in opt.param_groups],
        [g["momentum"] for g in opt.param_groups],
        list(model.parameters()),
    )


@idiom
def optimizer_state_keys(torch):
    model = _model(torch)
    opts = [
        torch.optim.RMSprop(model.parameters(), momentum=0.9, centered=True),
        torch.optim.Adagrad(model.parameters()),
        torch.optim.Adadelta(model.parameters()),
    ]
    _loss(torch, model).backward()
    keys = []
    for opt in opts:
        opt.step()
        keys.append(sorted(opt.state[next(iter(model.parameters()))].keys()))
    return keys


@idiom(**TOL)
def optimizer_state_dict_round_trip(torch):
    model = _model(torch)
    opt = torch.optim.Adagrad(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        _loss(torch, model).backward()
        opt.step()
    saved = opt.state_dict()
    opt2 = torch.optim.Adagrad(model.parameters(), lr=0.5)
    opt2.load_state_dict(saved)
    opt2.zero_grad()
    _loss(torch, model).backward()
    opt2.step()
    return opt2.param_groups[0]["lr"], sorted(saved["state"].keys()), list(model.parameters())


@idiom
def manual_lr_change(torch):
    model = _model(torch)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.1)
    for g in opt.param_groups:
        g["lr"] = g["lr"] * 0.5
    return opt.param_groups[0]["lr"], opt.defaults["lr"]


@idiom
def add_param_group_later(torch):
    model = _model(torch)
    opt = torch.optim.Adadelta(model[0].parameters())
    opt.add_param_group({"params": model[2].parameters(), "lr": 0.1})
    return len(opt.param_groups), opt.param_groups[1]["lr"], opt.param_groups[1]["rho"]


@idiom
def zero_grad_sets_none(torch):
    model = _model(torch)
    opt = torch.optim.Adagrad(model.parameters())
    _loss(torch, model).backward()
    opt.zero_grad()
    return [p.grad is None for p in model.parameters()]


@idiom
def bad_learning_rate_raises(torch):
    return torch.optim.RMSprop(_model(torch).parameters(), lr=-1.0)


def _lrs(torch, make, steps=12, opt="SGD", metric=None, **opt_kw):
    model = _model(torch)
    opt = getattr(torch.optim, opt)(model.parameters(), lr=0.1, **opt_kw)
    sched = make(torch.optim.lr_scheduler, opt)
    out = []
    for i in range(steps):
        opt.step()
        if metric is None:
            sched.step()
        else:
            sched.step(metric[i % len(metric)])
        out.append(round(opt.param_groups[0]["lr"], 12))
    return out


@idiom
def one_cycle_per_batch(torch):
    return _lrs(torch, lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=12), momentum=0.9)


@idiom
def one_cycle_epochs_steps_per_epoch_adam(torch):
    model = _model(torch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, epochs=3, steps_per_epoch=4)
    betas = []
    for _ in range(12):
        opt.step()
        sched.step()
        betas.append(round(opt.param_groups[0]["betas"][0], 10))
    return sched.get_last_lr(), betas


@idiom
def one_cycle_linear_three_phase(torch):
    return _lrs(
        torch,
        lambda S, o: S.OneCycleLR(
            o, max_lr=0.3, total_steps=12, anneal_strategy="linear", three_phase=True
        ),
        momentum=0.9,
    )


@idiom
def one_cycle_momentum_cycles(torch):
    model = _model(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    moms = []
    for _ in range(10):
        opt.step()
        sched.step()
        moms.append(round(opt.param_groups[0]["momentum"], 10))
    return moms


@idiom
def cosine_warm_restarts(torch):
    return _lrs(
        torch, lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-4), 20
    )


@idiom
def cosine_warm_restarts_fractional_epochs(torch):
    model = _model(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)
    lrs = []
    iters = 4
    for epoch in range(3):
        for i in range(iters):
            opt.step()
            sched.step(epoch + i / iters)
            lrs.append(round(sched.get_last_lr()[0], 12))
    return lrs


@idiom
def reduce_on_plateau_min(torch):
    losses = [1.0, 0.9, 0.91, 0.92, 0.93, 0.8, 0.81, 0.82, 0.83, 0.84]
    return _lrs(
        torch, lambda S, o: S.ReduceLROnPlateau(o, patience=2, factor=0.5), 10, metric=losses
    )


@idiom
def reduce_on_plateau_max_accuracy_cooldown(torch):
    accs = [50.0, 60.0, 60.0, 60.0, 61.0, 61.0, 61.0, 61.0, 61.0, 61.0]
    return _lrs(
        torch,
        lambda S, o: S.ReduceLROnPlateau(o, mode="max", patience=1, cooldown=2, min_lr=0.02),
        10,
        metric=accs,
    )


@idiom
def reduce_on_plateau_with_tensor_metric(torch):
    model = _model(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    for _ in range(3):
        with torch.no_grad():
            val_loss = _loss(torch, model)
        sched.step(val_loss)
    return opt.param_groups[0]["lr"], sched.num_bad_epochs


@idiom
def exponential_lr(torch):
    return _lrs(torch, lambda S, o: S.ExponentialLR(o, gamma=0.9))


@idiom
def step_lr_get_last_lr(torch):
    model = _model(torch)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    out = []
    for _ in range(4):
        opt.step()
        sched.step()
        out.append([round(v, 12) for v in sched.get_last_lr()])
    return out


@idiom
def scheduler_state_dict_resume(torch):
    model = _model(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    for _ in range(5):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    sched2 = torch.optim.lr_scheduler.OneCycleLR(opt2, max_lr=1.0, total_steps=20)
    sched2.load_state_dict(sched.state_dict())
    opt2.step()
    sched2.step()
    return round(opt2.param_groups[0]["lr"], 12), sched2.last_epoch


@idiom
def one_cycle_needs_total_steps(torch):
    return torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.SGD(_model(torch).parameters(), lr=0.1), max_lr=1.0
    )


@idiom(**TOL)
def clip_grad_norm_in_training_loop(torch):
    model = _model(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    norms = []
    for _ in range(3):
        opt.zero_grad()
        (_loss(torch, model) * 100).backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).item())
        opt.step()
    return norms, list(model.parameters())


@idiom(**TOL)
def clip_grad_norm_inf(torch):
    model = _model(torch)
    _loss(torch, model).backward()
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05, norm_type="inf")
    return total, [p.grad for p in model.parameters()]


@idiom(**TOL)
def clip_grad_value(torch):
    model = _model(torch)
    _loss(torch, model).backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.01)
    return [p.grad for p in model.parameters()]


@idiom
def parameters_to_vector_size(torch):
    vec = torch.nn.utils.parameters_to_vector(_model(torch).parameters())
    return tuple(vec.shape), vec


@idiom
def vector_to_parameters_round_trip(torch):
    model = _model(torch)
    vec = torch.nn.utils.parameters_to_vector(model.parameters())
    torch.nn.utils.vector_to_parameters(vec * 2, model.parameters())
    return list(model.parameters())


@idiom(**TOL)
def gradient_norm_logging(torch):
    model = _model(torch)
    _loss(torch, model).backward()
    return torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
