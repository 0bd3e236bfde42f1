"""The portable softmax / log_softmax kernels (csrc/ops/softmax_portable.*), which replace
oneDNN's reference implementation where it is the only one (aarch64 without SVE: the phones).
Forced on here so this machine checks them: forward and gradient against PyTorch in float64,
on random shapes and axes, and PyTorch's NaN / inf rows."""

from __future__ import annotations

import numpy as np
import pytest

import phalanx
import phalanx.nn.functional as F

torch = pytest.importorskip("torch")  # the reference; absent on phones


@pytest.fixture(autouse=True)
def portable():
    phalanx._C._force_portable_softmax(True)
    yield
    phalanx._C._force_portable_softmax(False)


def run_phalanx(x, dim, log, g):
    t = phalanx.tensor(x, requires_grad=True)
    y = (F.log_softmax if log else F.softmax)(t, dim=dim)
    y.backward(phalanx.tensor(g))
    return y.detach().numpy(), t.grad.numpy()


def run_torch(x, dim, log, g, dtype):
    t = torch.tensor(x, dtype=dtype, requires_grad=True)
    y = (torch.log_softmax if log else torch.softmax)(t, dim=dim)
    y.backward(torch.tensor(g, dtype=dtype))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_forward_and_gradient_match_float64(log, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 9, size=rng.integers(1, 5)))
    dim = int(rng.integers(-len(shape), len(shape)))
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    y, dx = run_phalanx(x, dim, log, g)
    y64, dx64 = run_torch(x, dim, log, g, torch.float64)
    # float32 rounding of the result only: the sums are in double
    np.testing.assert_allclose(y, y64, rtol=3e-7, atol=3e-7 if log else 1e-7)
    np.testing.assert_allclose(dx, dx64, rtol=2e-6, atol=1e-6)


def test_log_softmax_is_closer_to_float64_than_onednn_reference_bound():
    # many classes: the row sum is where float32 accumulation loses digits
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((64, 1000)) * 3).astype(np.float32)
    g = np.ones_like(x)
    y, _ = run_phalanx(x, 1, True, g)
    y64, _ = run_torch(x, 1, True, g, torch.float64)
    assert np.abs(y - y64).max() <= 1e-6


@pytest.mark.parametrize("log", [False, True])
def test_nan_and_inf_rows_as_pytorch(log):
    inf, nan = np.inf, np.nan
    x = np.array(
        [[1.0, nan, 2.0], [1.0, inf, 2.0], [-inf, -inf, -inf], [-inf, 0.0, 1.0], [3.0, 3.0, 3.0]],
        dtype=np.float32,
    )
    g = np.ones_like(x)
    y, dx = run_phalanx(x, 1, log, g)
    yt, dxt = run_torch(x, 1, log, g, torch.float32)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt))
    np.testing.assert_allclose(y, yt, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(dxt))
    np.testing.assert_allclose(dx, dxt, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("log", [False, True])
def test_a_row_of_one_element_is_exact(log):
    x = np.array([[5.0], [-3.0]], dtype=np.float32)
    y, dx = run_phalanx(x, 1, log, np.ones_like(x))
    np.testing.assert_array_equal(y, np.zeros_like(x) if log else np.ones_like(x))
    np.testing.assert_array_equal(dx, np.zeros_like(x))
