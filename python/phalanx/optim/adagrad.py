"""Adagrad with learning-rate decay, weight decay and maximize (PyTorch's rule)."""

from __future__ import annotations

from typing import Any, Callable

from .. import _C
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), updating each param group with one fused C++ call.

    Per parameter, as in ``torch.optim.Adagrad`` (t counts this parameter's steps)::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        sum = sum + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)

    ``state[p]`` holds ``step`` (0-d float32 tensor) and ``sum``; as in PyTorch both exist from
    construction on (``sum`` filled with ``initial_accumulator_value``), for every parameter.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        self._validate_group(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._state_of(p, group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(
            group,
            (
                ("lr", "learning rate"),
                ("lr_decay", "lr_decay value"),
                ("weight_decay", "weight_decay value"),
                ("initial_accumulator_value", "initial_accumulator_value value"),
                ("eps", "epsilon value"),
            ),
        )

    def _state_of(self, p, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _C.zeros([])
            state["sum"] = _C.full(list(p.shape), float(group["initial_accumulator_value"]))
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            states = [self._state_of(p, group) for p in params]
            _C.optim.adagrad_step(
                params,
                grads,
                [s["sum"] for s in states],
                [s["step"] for s in states],
                lr=float(group["lr"]),
                lr_decay=float(group["lr_decay"]),
                weight_decay=float(group["weight_decay"]),
                eps=float(group["eps"]),
                maximize=bool(group["maximize"]),
            )
        return loss
