"""RMSprop, Adagrad and Adadelta against torch.optim: step-for-step trajectories, state,
state_dicts both ways, param groups, one fused call per group, and bad hyperparameters."""

import re

import numpy as np
import pytest
from conftest import assert_close, to_numpy
from test_optim import (
    _to_torch_state_dict,
    build,
    config_id,
    initial_arrays,
    loss_of,
    make_params,
    train,
)

import phalanx
import phalanx.optim as px_optim

torch = pytest.importorskip("torch")

STEPS = 20

CONFIGS = [
    ("RMSprop", dict(), None),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05), None),
    ("RMSprop", dict(lr=0.005, momentum=0.9), None),
    ("RMSprop", dict(lr=0.005, centered=True), None),
    ("RMSprop", dict(lr=0.002, momentum=0.5, centered=True, maximize=True, weight_decay=0.1), None),
    (
        "RMSprop",
        dict(lr=0.01),
        [([0, 1], dict(momentum=0.9)), ([2, 3], dict(lr=0.003, centered=True))],
    ),
    ("Adagrad", dict(), None),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01), None),
    ("Adagrad", dict(lr=0.05, initial_accumulator_value=0.3, eps=1e-6, maximize=True), None),
    ("Adagrad", dict(lr=0.1), [([0, 2], {}), ([1, 3], dict(lr=0.02, lr_decay=0.1))]),
    ("Adadelta", dict(), None),
    ("Adadelta", dict(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.05), None),
    ("Adadelta", dict(lr=2.0, maximize=True), None),
    ("Adadelta", dict(lr=1.0), [([0], dict(rho=0.95)), ([1, 2, 3], dict(lr=0.1))]),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_trajectory_matches_torch(config):
    name, kwargs, groups = config
    arrays = initial_arrays()
    px_params, th_params = make_params(phalanx, arrays), make_params(torch, arrays)
    px_opt = build(px_optim, name, px_params, kwargs, groups)
    th_opt = build(torch.optim, name, th_params, kwargs, groups)
    for step in range(STEPS):
        for opt, params, lib in ((px_opt, px_params, phalanx), (th_opt, th_params, torch)):
            opt.zero_grad()
            loss_of(lib, params).backward()
            opt.step()
        for i, (p, t) in enumerate(zip(px_params, th_params)):
            assert_close(p, t, rtol=1e-4, atol=1e-5, msg=f"param {i} after step {step + 1}")


STATE_KEYS = [
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.1)),
    ("Adadelta", dict()),
]


@pytest.mark.parametrize("name,kwargs", STATE_KEYS)
def test_state_matches_torch(name, kwargs):
    arrays = initial_arrays()
    px_params, th_params = make_params(phalanx, arrays), make_params(torch, arrays)
    px_opt = build(px_optim, name, px_params, kwargs)
    th_opt = build(torch.optim, name, th_params, kwargs)
    assert len(px_opt.state) == len(th_opt.state)  # Adagrad: state exists before any step
    train(px_opt, px_params, phalanx, 3)
    train(th_opt, th_params, torch, 3)
    for p, t in zip(px_params, th_params):
        ps, ts = px_opt.state[p], th_opt.state[t]
        assert set(ps) == set(ts)
        assert float(ps["step"]) == float(ts["step"]) == 3.0
        for key in ts:
            if key != "step":
                # Both sides are float32: an element that is the small difference of larger
                # terms (a momentum buffer near zero among entries near 20) carries their
                # rounding, ~1e-6 of the tensor's scale. How close each side is to the exact
                # (float64) state is checked below.
                scale = float(np.abs(to_numpy(ts[key])).max())
                assert_close(ps[key], ts[key], rtol=1e-4, atol=max(1e-7, 1e-6 * scale), msg=key)


@pytest.mark.parametrize("name,kwargs", STATE_KEYS)
def test_state_is_as_accurate_as_torch_float32(name, kwargs, monkeypatch):
    """phalanx's state after 3 steps is about as close to the float64 state as torch's float32
    state is: within 4 times torch's error plus 4 float32 ulps of the tensor's scale (the
    summation orders differ, so neither side is the more accurate on every tensor)."""
    import test_optim

    arrays = initial_arrays()
    states = {}
    for which, lib, mod, dtype in (
        ("phalanx", phalanx, px_optim, np.float32),
        ("torch32", torch, torch.optim, np.float32),
        ("torch64", torch, torch.optim, np.float64),
    ):
        monkeypatch.setattr(test_optim, "X", test_optim.X.astype(dtype))
        monkeypatch.setattr(test_optim, "Y", test_optim.Y.astype(dtype))
        params = make_params(lib, [a.astype(dtype) for a in arrays])
        opt = build(mod, name, params, kwargs)
        train(opt, params, lib, 3)
        states[which] = [
            {k: to_numpy(v).astype(np.float64) for k, v in opt.state[p].items() if k != "step"}
            for p in params
        ]
    for i, exact in enumerate(states["torch64"]):
        for key, want in exact.items():
            ulp = float(np.spacing(np.float32(np.abs(want).max())))
            px_err = np.abs(states["phalanx"][i][key] - want).max()
            th_err = np.abs(states["torch32"][i][key] - want).max()
            assert px_err <= 4 * th_err + 4 * ulp, (i, key, px_err, th_err, ulp)


def test_adagrad_param_without_grad_keeps_initial_state():
    arrays = initial_arrays()
    px_params, th_params = make_params(phalanx, arrays), make_params(torch, arrays)
    px_opt = px_optim.Adagrad(px_params, initial_accumulator_value=0.5)
    th_opt = torch.optim.Adagrad(th_params, initial_accumulator_value=0.5)
    for params, lib, opt in ((px_params, phalanx, px_opt), (th_params, torch, th_opt)):
        params[1].grad = lib.ones(*params[1].shape)
        opt.step()
    for p, t in zip(px_params, th_params):
        assert float(px_opt.state[p]["step"]) == float(th_opt.state[t]["step"])
        assert_close(px_opt.state[p]["sum"], th_opt.state[t]["sum"])
        assert_close(p, t)


@pytest.mark.parametrize(
    "name,kwargs,groups",
    [
        ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True), None),
        ("Adagrad", dict(lr=0.1, lr_decay=0.01), [([0, 1], {}), ([2, 3], dict(lr=0.02))]),
        ("Adadelta", dict(lr=0.5), None),
    ],
)
def test_state_dict_round_trip_resumes_identically(name, kwargs, groups):
    params = make_params(phalanx, initial_arrays())
    opt = build(px_optim, name, params, kwargs, groups)
    train(opt, params, phalanx, 5)
    saved = opt.state_dict()
    assert sorted(saved["state"]) == [0, 1, 2, 3]
    resumed_params = make_params(phalanx, [to_numpy(p) for p in params])
    resumed = build(px_optim, name, resumed_params, kwargs, groups)
    resumed.load_state_dict(saved)
    train(opt, params, phalanx, 10)
    train(resumed, resumed_params, phalanx, 10)
    for p, q in zip(params, resumed_params):
        np.testing.assert_array_equal(to_numpy(q), to_numpy(p))


@pytest.mark.parametrize("name,kwargs", STATE_KEYS)
def test_state_dict_is_interchangeable_with_torch(name, kwargs):
    arrays = initial_arrays()
    px_params = make_params(phalanx, arrays)
    px_opt = build(px_optim, name, px_params, kwargs)
    train(px_opt, px_params, phalanx, 5)
    th_params = make_params(torch, [to_numpy(p) for p in px_params])
    th_opt = build(torch.optim, name, th_params, kwargs)
    th_opt.load_state_dict(_to_torch_state_dict(px_opt.state_dict()))
    train(th_opt, th_params, torch, 5)
    back_params = make_params(phalanx, [to_numpy(t) for t in th_params])
    back = build(px_optim, name, back_params, kwargs)
    back.load_state_dict(th_opt.state_dict())
    train(px_opt, px_params, phalanx, 5)
    for p, t in zip(px_params, th_params):
        assert_close(t, p, rtol=1e-4, atol=1e-5)
    train(back, back_params, phalanx, 3)
    train(th_opt, th_params, torch, 3)
    for p, t in zip(back_params, th_params):
        assert_close(p, t, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name,kernel",
    [("RMSprop", "rmsprop_step"), ("Adagrad", "adagrad_step"), ("Adadelta", "adadelta_step")],
)
def test_one_fused_call_per_group(monkeypatch, name, kernel):
    from phalanx import _C

    calls = []
    real = getattr(_C.optim, kernel)

    def counting(params, *args, **kwargs):
        calls.append(len(params))
        return real(params, *args, **kwargs)

    monkeypatch.setattr(_C.optim, kernel, counting)
    params = make_params(phalanx, initial_arrays())
    opt = build(px_optim, name, params, dict(lr=0.1), [([0, 1], {}), ([2, 3], {})])
    loss_of(phalanx, params).backward()
    opt.step()
    assert calls == [2, 2]


def _p():
    return [phalanx.zeros(3, requires_grad=True)]


@pytest.mark.parametrize(
    "make,value",
    [
        (lambda: px_optim.RMSprop(_p(), lr=-0.1), "learning rate: -0.1"),
        (lambda: px_optim.RMSprop(_p(), alpha=-0.5), "alpha value: -0.5"),
        (lambda: px_optim.RMSprop(_p(), momentum=-0.9), "momentum value: -0.9"),
        (lambda: px_optim.RMSprop(_p(), eps=-1.0), "epsilon value: -1.0"),
        (lambda: px_optim.Adagrad(_p(), lr_decay=-0.1), "lr_decay value: -0.1"),
        (
            lambda: px_optim.Adagrad(_p(), initial_accumulator_value=-1),
            "initial_accumulator_value value: -1",
        ),
        (lambda: px_optim.Adagrad(_p(), weight_decay=-2.0), "weight_decay value: -2.0"),
        (lambda: px_optim.Adadelta(_p(), rho=1.5), "rho value: 1.5"),
        (lambda: px_optim.Adadelta(_p(), lr=-1.0), "learning rate: -1.0"),
        (lambda: px_optim.Adadelta(_p(), eps=-1e-6), "epsilon value: -1e-06"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_value(make, value):
    with pytest.raises(ValueError, match=re.escape(value)):
        make()


def test_kernel_errors_name_the_tensor():
    q = phalanx.zeros(3, requires_grad=True)
    opt = px_optim.RMSprop([q])
    q.grad = phalanx.ones(3).to(phalanx.float16)
    with pytest.raises(TypeError, match="rmsprop_step: gradient 0 is float16"):
        opt.step()
