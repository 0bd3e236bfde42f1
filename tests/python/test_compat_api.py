"""The PyTorch-compatibility surface of issue 16 that the idiom suite does not pin by itself:
messages of device and to() errors, save() of a whole model, load()'s keywords, compile and
autocast, and that autograd.grad touches no .grad."""

import numpy as np
import pytest

import phalanx


def test_to_type_error_names_types_not_values():
    big = phalanx.zeros(100, 100)
    with pytest.raises(TypeError) as e:
        big.to(big.shape)
    assert len(str(e.value)) < 300 and "Size" in str(e.value)


def test_other_device_raises_assertion_and_runtime_error_naming_it():
    for move in (
        lambda: phalanx.zeros(1).to("cuda"),
        lambda: phalanx.zeros(1).cuda(),
        lambda: phalanx.zeros(2, device="cuda:1"),
        lambda: phalanx.nn.Linear(1, 1).to("mps"),
    ):
        with pytest.raises(AssertionError, match="cuda|mps") as e:
            move()
        assert isinstance(e.value, (RuntimeError, ValueError))


def test_device_strings():
    assert str(phalanx.device("cuda", 2)) == "cuda:2"
    assert phalanx.device("cpu") == phalanx.zeros(1).device
    with pytest.raises(RuntimeError, match="gpu"):
        phalanx.device("gpu")


def test_save_whole_model_says_to_save_state_dict(tmp_path):
    model = phalanx.nn.Linear(2, 2)
    for obj in (model, {"model": model, "epoch": 1}):
        with pytest.raises(TypeError, match=r"state_dict\(\)"):
            phalanx.save(obj, tmp_path / "m.phx")
    assert not (tmp_path / "m.phx").exists()


def test_load_accepts_torch_keywords(tmp_path):
    path = tmp_path / "w.phx"
    phalanx.save({"w": phalanx.ones(2)}, path)
    for kw in (
        {"map_location": "cpu"},
        {"map_location": phalanx.device("cpu")},
        {"map_location": {"cuda:0": "cpu"}},
        {"map_location": lambda storage, loc: storage},
        {"weights_only": True, "mmap": False},
    ):
        assert phalanx.load(path, **kw)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(AssertionError, match="cuda"):
        phalanx.load(path, map_location="cuda:0")


def test_compile_returns_model_and_autocast_says_what_is_supported():
    model = phalanx.nn.Linear(2, 2)
    assert phalanx.compile(model) is model
    assert phalanx.compile(mode="max-autotune")(model) is model
    with pytest.raises(RuntimeError, match="float32"):
        phalanx.autocast("cpu", dtype=phalanx.bfloat16)
    with phalanx.autocast("cpu", enabled=False):
        pass


def test_autograd_grad_leaves_dot_grad_alone():
    x = phalanx.tensor([1.0, 2.0], requires_grad=True)
    w = phalanx.tensor([3.0, 4.0], requires_grad=True)
    (gx,) = phalanx.autograd.grad((x * w).sum(), x)
    np.testing.assert_array_equal(gx.numpy(), [3.0, 4.0])
    assert x.grad is None and w.grad is None
    with pytest.raises(ValueError, match="create_graph"):
        phalanx.autograd.grad((x * w).sum(), x, create_graph=True)
