"""Optimizer: the parameter-group bookkeeping shared by every phalanx optimizer.

The arithmetic lives in C++ (phalanx._C.optim): a subclass's step() gathers, for each param
group, the parameters that have gradients plus their state tensors, and makes one fused call
per group. What stays in Python is PyTorch's user-facing contract: param groups as dicts,
per-parameter ``state`` keyed by the parameter itself, and ``state_dict`` in PyTorch's format.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from itertools import chain
from typing import Any, Callable

import numpy as np

from .. import _C
from .._C import Tensor
from .._timeline import recorder as _timeline
from ..autograd import enable_grad


class _RequiredParameter:
    """Marks a hyperparameter that every param group must set (no default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class: holds ``param_groups`` (a list of dicts) and ``state`` (per parameter).

    ``state`` maps a parameter tensor to a dict of its state; tensors hash by identity, as in
    PyTorch, so the same tensor objects must be used as keys (``group["params"]`` holds them).
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got a single Tensor of shape {tuple(params.shape)}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ---- subclass hooks ---------------------------------------------------------------------

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Raises ValueError for a hyperparameter out of range (each optimizer overrides)."""

    @staticmethod
    def _require_non_negative(group: dict[str, Any], checks: tuple[tuple[str, str], ...]) -> None:
        """ValueError "Invalid <label>: <value>" (PyTorch's wording) for the first negative one of
        `checks`, pairs of (group key, label)."""
        for key, label in checks:
            if group[key] < 0.0:
                raise ValueError(f"Invalid {label}: {group[key]}")

    # ---- param groups -----------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group of parameters with its own hyperparameters; missing ones take the
        optimizer's defaults. A parameter may belong to one group only."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        elif params is None:
            raise ValueError("param_group has no 'params' entry")
        params = list(params)
        name = type(self).__name__
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but parameter {i} is a "
                    f"{type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (parameter {i}, shape {tuple(p.shape)}, "
                    f"grad_fn={p.grad_fn!r}); optimize the leaf it was computed from, or "
                    "use .detach().requires_grad_()"
                )
            if p.dtype != _C.dtype.float32:
                raise TypeError(
                    f"{name} updates float32 parameters only, but parameter {i} "
                    f"(shape {tuple(p.shape)}) is {p.dtype!r}"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        group["params"] = params

        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization "
                    f"parameter {key}"
                )
            group.setdefault(key, default)
        self._validate_group(group)

        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ---- gradients and steps ----------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Resets the gradients: to None (the default, frees memory), or to zero in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g.zero_()

    @staticmethod
    def _with_grads(group: dict[str, Any]) -> tuple[list[Tensor], list[Tensor]]:
        """The group's parameters that have a gradient, and those gradients."""
        params, grads = [], []
        for p in group["params"]:
            g = p.grad
            if g is not None:
                params.append(p)
                grads.append(g)
        return params, grads

    @staticmethod
    def _run_closure(closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        raise NotImplementedError

    _step_busy = threading.local()  # shared, so super().step() inside step() is one span

    def __init_subclass__(cls, **kwargs):
        """Every optimizer's step() is an "optimizer step" span of the timeline (a flag read
        when none records)."""
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "__phalanx_traced__", False):
            cls.step = _timeline.traced("optimizer step", "optimizer", Optimizer._step_busy)(step)

    # ---- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's format: ``{"state": {index: {...}}, "param_groups": [{..., "params":
        [indices]}]}``, indices numbering the parameters across groups in order. State tensors
        are shared, not copied (a checkpoint writer serialises them at once)."""
        index_of: dict[int, int] = {}
        packed_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            packed_groups.append(packed)
        packed_state = {
            (index_of[id(k)] if isinstance(k, Tensor) else k): dict(v)
            for k, v in self.state.items()
        }
        return {"state": packed_state, "param_groups": packed_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a state_dict from this optimizer type (ours or PyTorch's). State tensors are
        copied, so the optimizer that produced ``state_dict`` can keep running independently."""
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"but the optimizer has {len(groups)}"
            )
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    f"loaded state dict's parameter group {i} has {len(sg['params'])} parameters, "
                    f"but the optimizer's group has {len(g['params'])}"
                )
        id_map = dict(
            zip(
                chain.from_iterable(sg["params"] for sg in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = {
                    key: _load_state_value(param, key, value) for key, value in v.items()
                }
            else:
                state[k] = v
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            ng = {k: v for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            new_groups.append(ng)
        self.state = state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _load_state_value(param: Tensor, key: str, value: Any) -> Any:
    """One state entry made usable by the fused kernels: a float32 tensor of its own."""
    if value is None:
        return None
    if key == "step":  # a 0-d counter; PyTorch's may be a tensor or (older) a number
        return _C._from_numpy(np.array(float(np.asarray(value)), dtype=np.float32))
    if isinstance(value, Tensor):
        t = value.detach().to(_C.dtype.float32).clone()
    elif hasattr(value, "__array__") or hasattr(value, "numpy"):
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        t = _C._from_numpy(np.array(arr, dtype=np.float32, copy=True, order="C"))
    else:
        return value
    if tuple(t.shape) != tuple(param.shape):
        raise ValueError(
            f"state '{key}' has shape {tuple(t.shape)}, but its parameter has shape "
            f"{tuple(param.shape)}"
        )
    return t
