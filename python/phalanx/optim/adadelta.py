"""Adadelta with weight decay and maximize (PyTorch's rule)."""

from __future__ import annotations

from typing import Any, Callable

from .. import _C
from .optimizer import Optimizer


class Adadelta(Optimizer):
    """Adadelta (Zeiler), updating each param group with one fused C++ call.

    Per parameter, as in ``torch.optim.Adadelta``::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    ``state[p]`` holds ``step`` (0-d float32 tensor), ``square_avg`` (v) and ``acc_delta`` (u).
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(group, (("lr", "learning rate"),))
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")
        self._require_non_negative(
            group, (("eps", "epsilon value"), ("weight_decay", "weight_decay value"))
        )

    def _state_of(self, p) -> dict[str, Any]:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _C.zeros([])
            state["square_avg"] = _C.zeros(list(p.shape))
            state["acc_delta"] = _C.zeros(list(p.shape))
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            states = [self._state_of(p) for p in params]
            _C.optim.adadelta_step(
                params,
                grads,
                [s["square_avg"] for s in states],
                [s["acc_delta"] for s in states],
                [s["step"] for s in states],
                lr=float(group["lr"]),
                rho=float(group["rho"]),
                eps=float(group["eps"]),
                weight_decay=float(group["weight_decay"]),
                maximize=bool(group["maximize"]),
            )
        return loss
