"""The large-batch recipe in one call: LARS, learning rate scaled linearly with the global
batch, gradual warmup, cosine decay.

A cluster of N phones trains with a global batch N times a phone's: the recipe that keeps
accuracy there (Goyal et al. 2017, linear scaling and warmup; You et al. 2017, LARS) is what the
138-phone paper ran. ``large_batch_optimizer`` assembles it from the pieces that exist on their
own (LARS, ``lr_scheduler.scaled_warmup_cosine``), so each piece stays usable and tested alone.
"""

from __future__ import annotations

from .lars import LARS
from .lr_scheduler import scaled_warmup_cosine
from .sgd import SGD

__all__ = ["large_batch_optimizer"]


def _params_of(model_or_params):
    params = getattr(model_or_params, "parameters", None)
    params = list(params() if callable(params) else model_or_params)
    if not params:
        raise ValueError("large_batch_optimizer: no parameters given")
    return [p for p in params if getattr(p, "requires_grad", True)]


def large_batch_optimizer(
    model_or_params,
    global_batch: int,
    steps_per_epoch: int,
    epochs: int,
    *,
    base_lr: float = 0.1,
    reference_batch: int = 256,
    warmup_epochs: float = 5.0,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    trust_coefficient: float = 0.001,
    eta_min: float = 0.0,
    optimizer: str = "lars",
):
    """Returns ``(optimizer, scheduler)`` for training with `global_batch` samples per step.

    Args:
        model_or_params: a Module or an iterable of parameters.
        global_batch: samples per optimizer step summed over all ranks.
        steps_per_epoch, epochs: the length of training (the scheduler steps once per
            optimizer step; call ``scheduler.step()`` after ``optimizer.step()``).
        base_lr: the learning rate known to work at `reference_batch`; the peak rate is
            ``base_lr * global_batch / reference_batch``.
        warmup_epochs: linear ramp from ``base_lr`` to the peak rate (Goyal et al.), then
            cosine decay to `eta_min` at the end of training.
        optimizer: "lars" (layer-wise trust ratio; biases and normalisation parameters,
            ``dim() <= 1``, are excluded from it and from weight decay, as in You et al.) or
            "sgd" (momentum SGD, weight decay on ``dim() > 1`` parameters only) to compare.
    """
    if global_batch <= 0 or steps_per_epoch <= 0 or epochs <= 0:
        raise ValueError(
            f"large_batch_optimizer: global_batch ({global_batch}), steps_per_epoch "
            f"({steps_per_epoch}) and epochs ({epochs}) must be positive"
        )
    if warmup_epochs < 0:
        raise ValueError(f"large_batch_optimizer: warmup_epochs must be >= 0, got {warmup_epochs}")
    params = _params_of(model_or_params)
    if optimizer == "lars":
        opt = LARS(
            params,
            lr=base_lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
        )
    elif optimizer == "sgd":
        groups = [
            {"params": [p for p in params if p.dim() > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0},
        ]
        opt = SGD([g for g in groups if g["params"]], lr=base_lr, momentum=momentum)
    else:
        raise ValueError(
            f"large_batch_optimizer: optimizer must be 'lars' or 'sgd', got {optimizer!r}"
        )
    total = steps_per_epoch * epochs
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), total - 1)
    sched = scaled_warmup_cosine(
        opt,
        global_batch,
        warmup_steps=warmup,
        total_steps=total,
        reference_batch=reference_batch,
        base_lr=base_lr,
        eta_min=eta_min,
    )
    return opt, sched
