"""RMSprop with momentum, centering, weight decay and maximize (PyTorch's rule)."""

from __future__ import annotations

from typing import Any, Callable

from .. import _C
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton), updating each param group with one fused C++ call.

    Per parameter, as in ``torch.optim.RMSprop``::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - m * m) + eps  with m = lerp(m, g, 1 - alpha)   if centered
        avg = sqrt(v) + eps                                           otherwise
        buf = momentum * buf + g / avg;  p = p - lr * buf             if momentum > 0
        p = p - lr * g / avg                                          otherwise

    ``state[p]`` holds ``step`` (0-d float32 tensor), ``square_avg`` and, when used,
    ``momentum_buffer`` and ``grad_avg``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(
            group,
            (
                ("lr", "learning rate"),
                ("eps", "epsilon value"),
                ("momentum", "momentum value"),
                ("weight_decay", "weight_decay value"),
                ("alpha", "alpha value"),
            ),
        )

    def _state_of(self, p, momentum: bool, centered: bool) -> dict[str, Any]:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _C.zeros([])
            state["square_avg"] = _C.zeros(list(p.shape))
        if momentum and state.get("momentum_buffer") is None:
            state["momentum_buffer"] = _C.zeros(list(p.shape))
        if centered and state.get("grad_avg") is None:
            state["grad_avg"] = _C.zeros(list(p.shape))
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            momentum = float(group["momentum"])
            centered = bool(group["centered"])
            states = [self._state_of(p, momentum > 0, centered) for p in params]
            _C.optim.rmsprop_step(
                params,
                grads,
                [s["square_avg"] for s in states],
                [s["momentum_buffer"] for s in states] if momentum > 0 else [],
                [s["grad_avg"] for s in states] if centered else [],
                [s["step"] for s in states],
                lr=float(group["lr"]),
                alpha=float(group["alpha"]),
                eps=float(group["eps"]),
                weight_decay=float(group["weight_decay"]),
                momentum=momentum,
                centered=centered,
                maximize=bool(group["maximize"]),
            )
        return loss
