"""float64 storage and PyTorch's exception types (issue 16).

float64: phalanx.tensor(float64 array) used to become float32 silently and from_numpy(float64)
raised. Now both give float64 storage that reads back exactly; elementwise math, comparisons
and reductions run in double; autograd and the oneDNN ops refuse float64 by name.

Errors: PyTorch raises RuntimeError where phalanx raised ValueError/TypeError; each is now
both, with phalanx's message.
"""

import numpy as np
import pytest

import phalanx

torch = pytest.importorskip("torch")

VALUES = np.array([1.1, 2.2, 3.3, 1e-300, 1e300, -0.0], dtype=np.float64)


def test_tensor_of_float64_array_reads_back_exactly():
    t = phalanx.tensor(VALUES)
    assert t.dtype == phalanx.float64 == phalanx.double
    assert str(t.dtype) == "phalanx.float64"
    assert t.numpy().dtype == np.float64
    np.testing.assert_array_equal(t.numpy(), VALUES)
    assert t.tolist() == VALUES.tolist()
    assert t[0].item() == 1.1
    assert torch.tensor(VALUES).dtype == torch.float64  # the behaviour matched


def test_from_numpy_float64_shares_memory():
    a = VALUES.copy()
    t = phalanx.from_numpy(a)
    assert t.dtype == phalanx.float64
    t[0] = 5.5
    assert a[0] == 5.5
    assert phalanx.as_tensor(a).dtype == phalanx.float64


def test_python_floats_stay_float32():
    assert phalanx.tensor([1.5, 2.5]).dtype == phalanx.float32
    assert phalanx.tensor(2.5).dtype == phalanx.float32
    assert phalanx.tensor(np.float64(2.5)).dtype == phalanx.float64


def test_conversions():
    t = phalanx.tensor(VALUES[:3])
    assert t.float().dtype == phalanx.float32
    assert t.float().double().dtype == phalanx.float64
    assert phalanx.tensor([1.0]).to(phalanx.float64).dtype == phalanx.float64
    assert t.to(phalanx.int64).tolist() == [1, 2, 3]
    np.testing.assert_array_equal(t.half().double().numpy(), VALUES[:3].astype(np.float16))


def test_math_runs_in_double_like_torch():
    a = np.random.default_rng(0).standard_normal((3, 4))
    p, t = phalanx.tensor(a), torch.tensor(a)
    cases = [
        lambda m, x: x + 1,
        lambda m, x: x * x / 3,
        lambda m, x: (x - 0.5).abs().sqrt(),
        lambda m, x: x.exp().log(),
        lambda m, x: x.sum(),
        lambda m, x: x.mean(1),
        lambda m, x: x.max(0)[0],
        lambda m, x: m.maximum(x, x * 2),
        lambda m, x: x.clamp(-0.5, 0.5),
        lambda m, x: x > 0,
        lambda m, x: x + m.ones(3, 4),  # float32 operand: float64 wins, as in torch
    ]
    for case in cases:
        got, want = case(phalanx, p), case(torch, t)
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-14, atol=1e-300)


def test_float32_only_ops_name_op_and_dtype():
    x = phalanx.tensor(VALUES[:4].reshape(2, 2))
    with pytest.raises(TypeError, match="relu.*float64"):
        phalanx.nn.functional.relu(x)
    with pytest.raises(TypeError, match="matmul.*float64"):
        x @ x
    with pytest.raises(TypeError, match="float64"):
        phalanx.tensor(VALUES, requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        phalanx.ones(2, requires_grad=True).double()


def test_float64_checkpoint_round_trip(tmp_path):
    path = tmp_path / "x.phx"
    phalanx.save({"x": phalanx.tensor(VALUES)}, path)
    back = phalanx.load(path)["x"]
    assert back.dtype == phalanx.float64
    np.testing.assert_array_equal(back.numpy(), VALUES)


ERRORS = {
    "item_of_many": lambda m: m.tensor([1.0, 2.0]).item(),
    "view_of_non_contiguous": lambda m: m.zeros(2, 3).t().view(6),
    "mean_of_integers": lambda m: m.tensor([1, 2]).mean(),
    "broadcast_mismatch": lambda m: m.zeros(2) + m.zeros(3),
    "view_wrong_size": lambda m: m.zeros(2).view(3),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_are_runtime_errors_as_in_torch(name):
    with pytest.raises(RuntimeError):
        ERRORS[name](torch)
    with pytest.raises(RuntimeError) as caught:
        ERRORS[name](phalanx)
    # and still the ValueError/TypeError phalanx raised before, message intact
    assert isinstance(caught.value, (ValueError, TypeError))
    assert str(caught.value)


def test_error_classes():
    assert issubclass(phalanx._C.ValueError, ValueError)
    assert issubclass(phalanx._C.ValueError, RuntimeError)
    assert issubclass(phalanx._C.TypeError, TypeError)
    assert issubclass(phalanx._C.TypeError, RuntimeError)
