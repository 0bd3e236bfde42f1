"""phalanx.optim against torch.optim: trajectories, state_dicts, param groups, errors; LARS
against a NumPy implementation of its rule."""

import re

import numpy as np
import pytest
from conftest import assert_close, randn, to_numpy

import phalanx
import phalanx.optim as px_optim

torch = pytest.importorskip("torch")

STEPS = 20

# ---- a small model run identically in both frameworks ------------------------------------------

SHAPES = [(6, 4), (6,), (3, 6), (3,)]  # two linear layers: weights and biases
X = randn((8, 4), seed=100)
Y = randn((8, 3), seed=101)


def initial_arrays(seed=0):
    return [randn(s, seed=seed + i, scale=0.5) for i, s in enumerate(SHAPES)]


def make_params(lib, arrays):
    return [lib.tensor(a.copy(), requires_grad=True) for a in arrays]


def loss_of(lib, params):
    F = lib.nn.functional
    w1, b1, w2, b2 = params
    out = F.linear(F.tanh(F.linear(lib.tensor(X), w1, b1)), w2, b2)
    d = out - lib.tensor(Y)
    return (d * d).mean()


def build(optim_mod, name, params, kwargs, groups=None):
    """groups: None, or a list of (param indices, per-group overrides)."""
    cls = getattr(optim_mod, name)
    if groups is None:
        return cls(params, **kwargs)
    return cls([dict(params=[params[i] for i in idx], **extra) for idx, extra in groups], **kwargs)


def train(opt, params, lib, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss_of(lib, params).backward()
        opt.step()


CONFIGS = [
    ("SGD", dict(lr=0.1), None),
    ("SGD", dict(lr=0.1, weight_decay=0.05), None),
    ("SGD", dict(lr=0.05, momentum=0.9), None),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01), None),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), None),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True, weight_decay=0.1), None),
    (
        "SGD",
        dict(lr=0.1, momentum=0.9),
        [([0, 1], {}), ([2, 3], dict(lr=0.01, momentum=0.5, nesterov=True))],
    ),
    ("Adam", dict(), None),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6), None),
    ("Adam", dict(lr=0.01, weight_decay=0.1), None),
    ("Adam", dict(lr=0.01, amsgrad=True), None),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.05), None),
    ("Adam", dict(lr=0.01), [([0, 2], {}), ([1, 3], dict(lr=0.003, betas=(0.5, 0.9)))]),
    ("AdamW", dict(lr=0.01), None),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True), None),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, maximize=True), None),
    ("AdamW", dict(lr=0.01), [([0], dict(weight_decay=0.0)), ([1, 2, 3], dict(lr=0.05))]),
]


def config_id(c):
    name, kwargs, groups = c
    text = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}({text}){'-groups' if groups else ''}"


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


def test_adam_state_matches_torch():
    arrays = initial_arrays()
    px_params, th_params = make_params(phalanx, arrays), make_params(torch, arrays)
    px_opt = px_optim.Adam(px_params, lr=0.01, amsgrad=True)
    th_opt = torch.optim.Adam(th_params, lr=0.01, amsgrad=True)
    train(px_opt, px_params, phalanx, 3)
    train(th_opt, th_params, torch, 3)
    for p, t in zip(px_params, th_params):
        ps, ts = px_opt.state[p], th_opt.state[t]
        assert set(ps) == set(ts) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
        assert float(ps["step"]) == float(ts["step"]) == 3.0
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert_close(ps[key], ts[key], rtol=1e-4, atol=1e-7, msg=key)


def test_sgd_momentum_buffer_starts_at_gradient():
    p = phalanx.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    opt = px_optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    p.grad = phalanx.tensor(np.array([1.0, -1.0], np.float32))
    opt.step()
    # No dampening on the first step: the buffer is the gradient itself.
    np.testing.assert_allclose(to_numpy(opt.state[p]["momentum_buffer"]), [1.0, -1.0])
    np.testing.assert_allclose(to_numpy(p), [0.9, 2.1], rtol=1e-6)


def test_no_momentum_keeps_no_state():
    p = phalanx.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = px_optim.SGD([p], lr=0.1)
    p.grad = phalanx.ones(3)
    opt.step()
    assert len(opt.state) == 0


# ---- one fused call per group --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kernel",
    [("SGD", "sgd_step"), ("Adam", "adam_step"), ("AdamW", "adam_step"), ("LARS", "lars_step")],
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


def test_step_bumps_version_and_skips_params_without_grad():
    params = make_params(phalanx, initial_arrays())
    before = [to_numpy(p).copy() for p in params]
    versions = [p._version for p in params]
    opt = px_optim.Adam(params, lr=0.1)
    for i in (0, 2):
        params[i].grad = phalanx.ones(*params[i].shape)
    opt.step()
    for i, p in enumerate(params):
        if i in (0, 2):
            assert p._version > versions[i]
            assert not np.array_equal(to_numpy(p), before[i])
        else:
            assert p._version == versions[i]
            np.testing.assert_array_equal(to_numpy(p), before[i])
            assert p not in opt.state


def test_step_closure_returns_loss():
    params = make_params(phalanx, initial_arrays())
    opt = px_optim.SGD(params, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = loss_of(phalanx, params)
        loss.backward()
        return loss

    with phalanx.no_grad():  # the closure runs with grad enabled regardless
        loss = opt.step(closure)
    assert loss.requires_grad
    assert float(opt.step(closure)) < float(loss)


# ---- state_dict ----------------------------------------------------------------------------------

RESUME_CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), None),
    ("Adam", dict(lr=0.01, amsgrad=True), [([0, 1], {}), ([2, 3], dict(lr=0.002))]),
    ("AdamW", dict(lr=0.01, weight_decay=0.1), None),
    ("LARS", dict(lr=0.5, momentum=0.9, weight_decay=1e-3, trust_coefficient=0.02), None),
]


@pytest.mark.parametrize("config", RESUME_CONFIGS, ids=[config_id(c) for c in RESUME_CONFIGS])
def test_state_dict_round_trip_resumes_identically(config):
    name, kwargs, groups = config
    params = make_params(phalanx, initial_arrays())
    opt = build(px_optim, name, params, kwargs, groups)
    train(opt, params, phalanx, 5)
    saved = opt.state_dict()
    assert sorted(saved) == ["param_groups", "state"]
    assert [i for g in saved["param_groups"] for i in g["params"]] == [0, 1, 2, 3]
    assert sorted(saved["state"]) == [0, 1, 2, 3]

    resumed_params = make_params(phalanx, [to_numpy(p) for p in params])
    resumed = build(px_optim, name, resumed_params, kwargs, groups)
    resumed.load_state_dict(saved)
    train(opt, params, phalanx, 10)
    train(resumed, resumed_params, phalanx, 10)
    for p, q in zip(params, resumed_params):
        np.testing.assert_array_equal(to_numpy(q), to_numpy(p))
    assert resumed.param_groups[-1]["lr"] == opt.param_groups[-1]["lr"]


def _to_torch_state_dict(sd):
    def conv(v):
        return torch.tensor(to_numpy(v)) if isinstance(v, phalanx.Tensor) else v

    return {
        "state": {k: {n: conv(v) for n, v in s.items()} for k, s in sd["state"].items()},
        "param_groups": [dict(g) for g in sd["param_groups"]],
    }


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", dict(lr=0.05, momentum=0.9)),
        ("Adam", dict(lr=0.01, amsgrad=True)),
        ("AdamW", dict(lr=0.01)),
    ],
)
def test_state_dict_is_interchangeable_with_torch(name, kwargs):
    arrays = initial_arrays()
    # phalanx -> torch: train 5 steps here, continue 5 in torch; compare with 10 in phalanx.
    px_params = make_params(phalanx, arrays)
    px_opt = build(px_optim, name, px_params, kwargs)
    train(px_opt, px_params, phalanx, 5)
    th_params = make_params(torch, [to_numpy(p) for p in px_params])
    th_opt = build(torch.optim, name, th_params, kwargs)
    th_opt.load_state_dict(_to_torch_state_dict(px_opt.state_dict()))
    # torch -> phalanx: and back again after torch's 5 steps.
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


def test_load_state_dict_rejects_mismatched_groups():
    params = make_params(phalanx, initial_arrays())
    opt = px_optim.SGD(params, lr=0.1, momentum=0.9)
    other = px_optim.SGD(make_params(phalanx, initial_arrays())[:2], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="parameter group 0 has 4 parameters"):
        other.load_state_dict(opt.state_dict())
    two = px_optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    with pytest.raises(ValueError, match="2 parameter groups"):
        opt.load_state_dict(two.state_dict())


# ---- param groups, zero_grad ---------------------------------------------------------------------


def test_param_groups_and_add_param_group():
    params = make_params(phalanx, initial_arrays())
    opt = px_optim.SGD(params[:2], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": params[2:], "lr": 0.01})
    assert len(opt.param_groups) == 2
    g = opt.param_groups[1]
    assert g["lr"] == 0.01 and g["momentum"] == 0.9 and g["params"][0] is params[2]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        opt.add_param_group({"params": [phalanx.zeros(2, requires_grad=True)], "lr": -1})


def test_zero_grad_set_to_none_and_to_zero():
    params = make_params(phalanx, initial_arrays())
    opt = px_optim.SGD(params, lr=0.1)
    loss_of(phalanx, params).backward()
    opt.zero_grad(set_to_none=False)
    for p in params:
        assert p.grad is not None and tuple(p.grad.shape) == tuple(p.shape)
        assert not p.grad.requires_grad
        np.testing.assert_array_equal(to_numpy(p.grad), 0)
    loss_of(phalanx, params).backward()
    assert any(np.abs(to_numpy(p.grad)).sum() > 0 for p in params)
    opt.zero_grad()  # default: set_to_none=True, as in PyTorch 2
    assert all(p.grad is None for p in params)
    opt.step()  # no gradients: nothing happens
    assert len(opt.state) == 0


# ---- errors --------------------------------------------------------------------------------------


def _p():
    return [phalanx.zeros(3, requires_grad=True)]


@pytest.mark.parametrize(
    "make,value",
    [
        (lambda: px_optim.SGD(_p(), lr=-0.1), "-0.1"),
        (lambda: px_optim.SGD(_p(), lr=0.1, momentum=-0.5), "-0.5"),
        (lambda: px_optim.SGD(_p(), lr=0.1, weight_decay=-1e-4), "-0.0001"),
        (lambda: px_optim.SGD(_p(), lr=0.1, nesterov=True), "momentum=0"),
        (
            lambda: px_optim.SGD(_p(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            "dampening=0.1",
        ),
        (lambda: px_optim.Adam(_p(), lr=-1e-3), "-0.001"),
        (lambda: px_optim.Adam(_p(), betas=(1.0, 0.999)), "index 0: 1.0"),
        (lambda: px_optim.Adam(_p(), betas=(0.9, -0.1)), "index 1: -0.1"),
        (lambda: px_optim.Adam(_p(), eps=-1e-8), "-1e-08"),
        (lambda: px_optim.AdamW(_p(), weight_decay=-0.01), "-0.01"),
        (lambda: px_optim.LARS(_p(), lr=-2.0), "-2.0"),
        (
            lambda: px_optim.LARS(_p(), lr=1.0, trust_coefficient=0.0),
            "trust_coefficient value: 0.0",
        ),
        (lambda: px_optim.LARS(_p(), lr=1.0, momentum=-0.9), "-0.9"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_value(make, value):
    with pytest.raises(ValueError, match=re.escape(value)):
        make()


def test_lars_requires_lr():
    with pytest.raises(ValueError, match="required optimization parameter lr"):
        px_optim.LARS(_p())


def test_non_leaf_parameter_is_rejected():
    w = phalanx.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        px_optim.SGD([w * 2], lr=0.1)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int64"])
def test_non_float32_parameter_is_rejected(dtype):
    p = phalanx.zeros(3, dtype=getattr(phalanx, dtype))
    with pytest.raises(TypeError, match=f"float32.*{dtype}"):
        px_optim.Adam([p])


def test_bad_params_argument():
    with pytest.raises(TypeError, match="iterable of Tensors"):
        px_optim.SGD(phalanx.zeros(3, requires_grad=True), lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        px_optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        px_optim.SGD([np.zeros(3)], lr=0.1)


def test_kernel_errors_name_the_tensor():
    # A strided view is a leaf but cannot be updated through a flat loop.
    p = phalanx.tensor(np.ones((2, 3), np.float32)).t()
    opt = px_optim.SGD([p], lr=0.1)
    p.grad = phalanx.ones(3, 2)
    with pytest.raises(ValueError, match="sgd_step: parameter 0 .* not contiguous"):
        opt.step()
    q = phalanx.zeros(3, requires_grad=True)
    opt = px_optim.Adam([q])
    q.grad = phalanx.ones(3).to(phalanx.float16)
    with pytest.raises(TypeError, match="adam_step: gradient 0 is float16"):
        opt.step()


# ---- LARS against NumPy --------------------------------------------------------------------------

# weight, bias, norm scale, conv weight, zero-initialised weight
LARS_SHAPES = [(4, 3), (4,), (4,), (2, 3, 3, 3), (5, 2)]


def lars_arrays():
    arrays = [randn(s, seed=200 + i, scale=0.3) for i, s in enumerate(LARS_SHAPES)]
    arrays[4][:] = 0  # ||w|| == 0: local_lr falls back to 1
    return arrays


def quadratic_grads(ws, step):
    """Gradient of sum_i 0.5 * a_i * (w_i - c_i)^2 per tensor, with a fresh c_i each step so the
    gradient does not vanish; tensor 2 gets a zero gradient on even steps (||g|| == 0)."""
    out = []
    for i, w in enumerate(ws):
        a = np.abs(randn(w.shape, seed=300 + i)) + 0.5
        c = randn(w.shape, seed=400 + 17 * step + i)
        g = (a * (np.asarray(w, np.float64) - c)).astype(np.float32)
        if i == 2 and step % 2 == 0:
            g[...] = 0
        out.append(g)
    return out


def lars_numpy(ws, grads, bufs, excluded, lr, momentum, weight_decay, trust, eps):
    """The rule documented in phalanx.optim.LARS, in float64."""
    new_ws = []
    for i, (w, g) in enumerate(zip(ws, grads)):
        w = w.astype(np.float64)
        g = g.astype(np.float64)
        if excluded[i]:
            local, wd = 1.0, 0.0
        else:
            wn, gn = np.linalg.norm(w), np.linalg.norm(g)
            local = trust * wn / (gn + weight_decay * wn + eps) if wn > 0 and gn > 0 else 1.0
            wd = weight_decay
        step = lr * local * (g + wd * w)
        if momentum != 0:
            bufs[i] = momentum * bufs[i] + step
            step = bufs[i]
        new_ws.append(w - step)
    return new_ws


LARS_CONFIGS = [
    # kwargs, groups (indices, overrides) or None, expected exclusion per tensor
    (
        dict(lr=0.5, momentum=0.9, weight_decay=1e-3, trust_coefficient=0.02),
        None,
        [False, True, True, False, False],
    ),
    (
        dict(lr=2.0, momentum=0.0, weight_decay=5e-4, trust_coefficient=0.001),
        None,
        [False, True, True, False, False],
    ),
    (
        dict(lr=0.3, momentum=0.8, weight_decay=0.1, trust_coefficient=0.05, eps=1e-6),
        [([0, 4], {}), ([1, 2], dict(lars_exclude=False, lr=0.1)), ([3], dict(lars_exclude=True))],
        [False, False, False, True, False],
    ),
]


@pytest.mark.parametrize("kwargs,groups,excluded", LARS_CONFIGS)
def test_lars_matches_numpy_rule(kwargs, groups, excluded):
    arrays = lars_arrays()
    params = make_params(phalanx, arrays)
    opt = build(px_optim, "LARS", params, kwargs, groups)
    order = [i for idx, _ in groups for i in idx] if groups else list(range(len(arrays)))
    assert [px_optim.LARS.is_excluded(p, g) for g in opt.param_groups for p in g["params"]] == [
        excluded[i] for i in order
    ]

    group_of = {}
    for g in groups or [(range(len(arrays)), {})]:
        for i in g[0]:
            group_of[i] = {**kwargs, **g[1]}
    ref = [a.astype(np.float64) for a in arrays]
    bufs = [np.zeros(a.shape) for a in arrays]
    for step in range(STEPS):
        grads = quadratic_grads([to_numpy(p) for p in params], step)
        for p, g in zip(params, grads):
            p.grad = phalanx.tensor(g)
        opt.step()
        ref_grads = quadratic_grads(ref, step)
        new_ref = []
        for i in range(len(ref)):
            hp = group_of[i]
            bi = [bufs[i]]
            new_ref += lars_numpy(
                [ref[i]],
                [ref_grads[i]],
                bi,
                [excluded[i]],
                hp["lr"],
                hp.get("momentum", 0.9),
                hp.get("weight_decay", 0.0),
                hp.get("trust_coefficient", 0.001),
                hp.get("eps", 1e-8),
            )
            bufs[i] = bi[0]
        ref = new_ref
        for i, p in enumerate(params):
            assert_close(p, ref[i], rtol=1e-4, atol=1e-6, msg=f"tensor {i} after step {step + 1}")


def test_lars_excluded_param_is_plain_momentum_sgd():
    # An excluded tensor must follow SGD(momentum, dampening=0, no weight decay) except that the
    # buffer starts at zero: v1 = lr * g, the same as SGD's v1 = g scaled by lr.
    arr = randn((5,), seed=9)
    b_lars = phalanx.tensor(arr.copy(), requires_grad=True)
    b_sgd = torch.tensor(arr.copy(), requires_grad=True)
    lars = px_optim.LARS([b_lars], lr=0.1, momentum=0.9, weight_decay=0.5)
    sgd = torch.optim.SGD([b_sgd], lr=0.1, momentum=0.9)
    for step in range(10):
        g = randn((5,), seed=50 + step)
        b_lars.grad = phalanx.tensor(g)
        b_sgd.grad = torch.tensor(g)
        lars.step()
        sgd.step()
        assert_close(b_lars, b_sgd, rtol=1e-5, atol=1e-6)


def test_lars_local_lr_binding():
    from phalanx import _C

    w, g = randn((3, 4), seed=1), randn((3, 4), seed=2)
    got = _C.optim.lars_local_lr(
        phalanx.tensor(w), phalanx.tensor(g), weight_decay=0.01, trust_coefficient=0.001, eps=1e-8
    )
    wn, gn = np.linalg.norm(w.astype(np.float64)), np.linalg.norm(g.astype(np.float64))
    assert got == pytest.approx(0.001 * wn / (gn + 0.01 * wn + 1e-8), rel=1e-12)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
        ("Adam", dict(lr=0.01, amsgrad=True)),
        ("AdamW", dict(lr=0.01)),
    ],
)
def test_large_tensor_threaded_loop_matches_torch(name, kwargs):
    # 60,000 elements: above the kernels' OpenMP threshold, so the threaded path runs.
    arr = randn((200, 300), seed=5)
    px_p, th_p = make_params(phalanx, [arr]), make_params(torch, [arr])
    px_opt, th_opt = build(px_optim, name, px_p, kwargs), build(torch.optim, name, th_p, kwargs)
    for step in range(3):
        g = randn((200, 300), seed=60 + step)
        px_p[0].grad, th_p[0].grad = phalanx.tensor(g), torch.tensor(g)
        px_opt.step()
        th_opt.step()
    assert_close(px_p[0], th_p[0], rtol=1e-5, atol=1e-6)
