"""Adam and AdamW (decoupled weight decay), with amsgrad and maximize (PyTorch's rule)."""

from __future__ import annotations

from typing import Any, Callable

from .. import _C
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma and Ba), updating each param group with one fused C++ call.

    Per parameter, as in ``torch.optim.Adam`` (t counts this parameter's steps)::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)        if decoupled_weight_decay (AdamW)
        g = g + weight_decay * p               otherwise
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
        v_used = max(v_max, v) if amsgrad else v    (v_max keeps that maximum)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_used) / sqrt(1 - beta2**t) + eps)

    ``state[p]`` holds ``step`` (0-d float32 tensor), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        betas, wd = group["betas"], group["weight_decay"]
        self._require_non_negative(group, (("lr", "learning rate"), ("eps", "epsilon value")))
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta} (must be in [0, 1))")
        if wd < 0.0:
            raise ValueError(f"Invalid weight_decay value: {wd}")

    def _state_of(self, p, amsgrad: bool) -> dict[str, Any]:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _C.zeros([])
            state["exp_avg"] = _C.zeros(list(p.shape))
            state["exp_avg_sq"] = _C.zeros(list(p.shape))
        if amsgrad and state.get("max_exp_avg_sq") is None:
            state["max_exp_avg_sq"] = _C.zeros(list(p.shape))
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            amsgrad = bool(group["amsgrad"])
            states = [self._state_of(p, amsgrad) for p in params]
            beta1, beta2 = group["betas"]
            _C.optim.adam_step(
                params,
                grads,
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [s["max_exp_avg_sq"] for s in states] if amsgrad else [],
                [s["step"] for s in states],
                lr=float(group["lr"]),
                beta1=float(beta1),
                beta2=float(beta2),
                eps=float(group["eps"]),
                weight_decay=float(group["weight_decay"]),
                amsgrad=amsgrad,
                maximize=bool(group["maximize"]),
                decoupled_weight_decay=bool(group.get("decoupled_weight_decay", False)),
            )
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): ``p *= 1 - lr * weight_decay``
    before the Adam step, instead of adding ``weight_decay * p`` to the gradient."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # an AdamW is decoupled whatever the checkpoint says
            group["decoupled_weight_decay"] = True
