"""SGD with momentum, dampening, Nesterov, weight decay and maximize (PyTorch's rule)."""

from __future__ import annotations

from typing import Any, Callable

from .. import _C
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, updating each param group with one fused C++ call.

    Per parameter, as in ``torch.optim.SGD``::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        buf = g on the first step, else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf      (when momentum != 0)
        p = p - lr * g

    ``state[p]["momentum_buffer"]`` holds ``buf`` when momentum is non-zero.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(
            group,
            (
                ("lr", "learning rate"),
                ("momentum", "momentum value"),
                ("weight_decay", "weight_decay value"),
            ),
        )
        momentum, dampening = group["momentum"], group["dampening"]
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening, got "
                f"momentum={momentum}, dampening={dampening}"
            )

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            momentum = float(group["momentum"])
            buffers = [self.state[p].get("momentum_buffer") for p in params] if momentum else []
            buffers = _C.optim.sgd_step(
                params,
                grads,
                buffers,
                lr=float(group["lr"]),
                momentum=momentum,
                dampening=float(group["dampening"]),
                weight_decay=float(group["weight_decay"]),
                nesterov=bool(group["nesterov"]),
                maximize=bool(group["maximize"]),
            )
            if momentum != 0:
                for p, buf in zip(params, buffers):
                    self.state[p]["momentum_buffer"] = buf
        return loss
