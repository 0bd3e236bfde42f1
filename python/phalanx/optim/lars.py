"""LARS: layer-wise adaptive rate scaling (You, Gitman and Ginsburg, 2017).

Large-batch training (the 138-phone cluster runs ImageNet at batch sizes in the thousands)
needs learning rates so large that some layers' steps would exceed their weights; LARS scales
each tensor's step by the ratio of its weight norm to its gradient norm.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import _C
from .optimizer import Optimizer, required


class LARS(Optimizer):
    """SGD with momentum and a per-tensor trust ratio, one fused C++ call per param group.

    For each parameter ``w`` with gradient ``g`` (L2 norms over the whole tensor)::

        local_lr = trust_coefficient * ||w|| / (||g|| + weight_decay * ||w|| + eps)
                   (local_lr = 1 when ||w|| == 0 or ||g|| == 0)
        v = momentum * v + lr * local_lr * (g + weight_decay * w)      (v starts at 0)
        w = w - v

    Exclusion rule: a parameter is *excluded* -- it gets ``local_lr = 1`` and no weight decay,
    i.e. ``v = momentum * v + lr * g`` -- when its group's ``lars_exclude`` is True, or when
    ``lars_exclude`` is None (the default) and the parameter has ``dim() <= 1`` (biases and
    BatchNorm/LayerNorm weights and biases, as in the paper's ImageNet recipe). A group with
    ``lars_exclude=False`` applies LARS to every parameter, 1-D ones included.

    ``state[p]["momentum_buffer"]`` holds ``v`` when momentum is non-zero.

    Args:
        params: parameters or param-group dicts.
        lr: the global learning rate (already scaled for the batch size; see
            ``lr_scheduler.linear_scaling_lr``).
        momentum: momentum factor (default 0.9).
        weight_decay: L2 penalty of non-excluded parameters (default 0).
        trust_coefficient: eta of the paper (default 0.001).
        eps: keeps the trust ratio finite (default 1e-8).
        lars_exclude: default exclusion for the groups (None: exclude ``dim() <= 1``).
    """

    def __init__(
        self,
        params,
        lr: float = required,
        momentum: float = 0.9,
        weight_decay: float = 0,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
        lars_exclude: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            lars_exclude=lars_exclude,
        )
        if lr is not required:
            self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        if group["lr"] < 0.0:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if group["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["trust_coefficient"] <= 0.0:
            raise ValueError(
                f"Invalid trust_coefficient value: {group['trust_coefficient']} (must be > 0)"
            )
        if group["eps"] < 0.0:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if group["lars_exclude"] not in (None, True, False):
            raise ValueError(
                f"lars_exclude must be None, True or False, got {group['lars_exclude']!r}"
            )

    @staticmethod
    def is_excluded(param, group: dict[str, Any]) -> bool:
        """The exclusion rule of the class docstring, for one parameter of ``group``."""
        flag = group.get("lars_exclude")
        return param.dim() <= 1 if flag is None else bool(flag)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            momentum = float(group["momentum"])
            buffers = [self.state[p].get("momentum_buffer") for p in params] if momentum else []
            buffers = _C.optim.lars_step(
                params,
                grads,
                buffers,
                [self.is_excluded(p, group) for p in params],
                lr=float(group["lr"]),
                momentum=momentum,
                weight_decay=float(group["weight_decay"]),
                trust_coefficient=float(group["trust_coefficient"]),
                eps=float(group["eps"]),
            )
            if momentum != 0:
                for p, buf in zip(params, buffers):
                    self.state[p]["momentum_buffer"] = buf
        return loss
