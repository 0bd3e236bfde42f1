"""Checkpoints as training scripts write and read them: state dicts, optimizer state, resume."""

import os
import tempfile

import numpy as np

from ._registry import idiom


def _round_trip(torch, obj, **load_kwargs):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint.pt")
        torch.save(obj, path)
        return torch.load(path, **load_kwargs)


def _model(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    return model


@idiom
def save_load_state_dict(torch):
    model = _model(torch)
    state = _round_trip(torch, model.state_dict())
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    fresh.load_state_dict(state)
    return list(state), fresh(torch.ones(1, 3))


@idiom
def save_load_weights_only(torch):
    return _round_trip(torch, {"w": torch.tensor([1.0, 2.0])}, weights_only=True)


@idiom
def load_map_location_cpu_string(torch):
    return _round_trip(torch, {"w": torch.arange(3)}, map_location="cpu")


@idiom
def load_map_location_dict(torch):
    return _round_trip(torch, {"w": torch.arange(3)}, map_location={"cuda:0": "cpu"})


@idiom
def load_map_location_function(torch):
    return _round_trip(torch, [torch.ones(2)], map_location=lambda storage, loc: storage)


@idiom
def checkpoint_dict_resume(torch):
    model = _model(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    # (no opt.step(): torch's first step imports its compiler stack, ~20 s on a slow machine)
    ckpt = {"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict(), "loss": 0.25}
    back = _round_trip(torch, ckpt)
    opt2 = torch.optim.SGD(_model(torch).parameters(), lr=0.5, momentum=0.9)
    opt2.load_state_dict(back["optimizer"])
    return back["epoch"], back["loss"], opt2.param_groups[0]["lr"], sorted(back["model"])


@idiom
def save_scalars_and_lists(torch):
    return _round_trip(torch, {"losses": [0.5, 0.25], "name": "run1", "best": None, "ok": True})


@idiom
def save_int_and_bool_tensors(torch):
    return _round_trip(torch, (torch.tensor([1, 2, 3]), torch.tensor([True, False])))


@idiom
def save_float64_tensor(torch):
    return _round_trip(torch, torch.tensor(np.array([0.1, 1e-300])))


@idiom
def state_dict_keys(torch):
    return list(_model(torch).state_dict().keys())


@idiom
def batchnorm_state_dict_keys(torch):
    return list(torch.nn.BatchNorm2d(3).state_dict().keys())
