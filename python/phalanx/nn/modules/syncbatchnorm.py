"""SyncBatchNorm: BatchNorm over the global batch of a data-parallel job (PyTorch's name).

With balanced shares a phone may hold 3 samples of a 64-sample step: its own batch
statistics would be noise. SyncBatchNorm normalises with the mean and variance of the whole
global batch, whatever the local batch sizes (all-reduced sums and counts; the variance in
two passes, centred, so float32 keeps its precision), and updates the running statistics
exactly as one process would on the concatenated batch.

Gradients: the statistics depend on every rank's samples, so the gradient of the global loss
with respect to them is a sum over ranks. Each all-reduced statistic carries a gradient hook
that all-reduces the gradient arriving at it. DistributedDataParallel later scales this
rank's parameter gradients by its weight w_r (its share of the global batch, or 1/world),
so the hook sums w_q * g_q over ranks and divides by w_r: the gradient that continues into
this rank's part of the graph is then exactly the global batch's. Without a DDP wrapper the
hook sums plainly, as PyTorch does.
"""

from __future__ import annotations

import importlib
import time

from ... import _C
from ...autograd import no_grad
from .batchnorm import _BatchNorm
from .module import Module

__all__ = ["SyncBatchNorm"]


def _dist():
    # phalanx.distributed loads on first use, as phalanx.nn.parallel does: importing
    # phalanx.nn must not start the distributed layer.
    return importlib.import_module("phalanx.distributed")


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, *) inputs with statistics of the global batch of `process_group`
    (default: the world). In eval mode, or outside a process group of more than one rank,
    it is a plain BatchNorm."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias)
        self.process_group = process_group
        # Set by DistributedDataParallel: this rank's gradient weight for the current step.
        self._grad_weight = None
        # Seconds spent in this layer's all-reduces (waiting for the other ranks, mostly):
        # the balancer subtracts them from this rank's compute time.
        self.comm_seconds = 0.0

    def _check_input_dim(self, input) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _synchronised(self) -> bool:
        dist = _dist()
        return (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.process_group) > 1
        )

    def forward(self, input):
        if not self._synchronised():
            return super().forward(input)
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"SyncBatchNorm({self.num_features}): input has {input.shape[1]} channels "
                f"(shape {tuple(input.shape)})"
            )
        dims = (0,) + tuple(range(2, input.dim()))
        view = [1, self.num_features] + [1] * (input.dim() - 2)
        local = 1
        for d in dims:
            local *= input.shape[d]
        # the value count travels with the sums: one all-reduce for both
        sums, total = self._global_sum(input.sum(dim=dims), count=float(local))
        if total <= 1 and self.track_running_stats:
            raise ValueError(
                f"SyncBatchNorm: expected more than 1 value per channel over the global batch "
                f"when training, got {int(total)} (input shape {tuple(input.shape)})"
            )
        mean = sums / total
        centred = input - mean.reshape(*view)
        var = self._global_sum((centred * centred).sum(dim=dims))[0] / total
        out = centred / (var.reshape(*view) + self.eps).sqrt()
        if self.weight is not None:
            out = out * self.weight.reshape(*view)
        if self.bias is not None:
            out = out + self.bias.reshape(*view)
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach(), total)
        return out

    def _global_sum(self, local, count: float = 0.0):
        """(sum of `local` over ranks, sum of `count` over ranks). The first is
        differentiable: its gradient is summed over ranks weighted as DistributedDataParallel
        will weight this rank's (see the module doc)."""
        n = local.shape[0]
        with no_grad():
            both = _C.zeros(n + 1, dtype=local.dtype)
            both[:n].copy_(local.detach())
            both[n : n + 1].fill_(count)
            self._all_reduce(both)
            offset = both[:n] - local.detach()
            total_count = both[n].item()
        out = local + offset
        if out.requires_grad:
            out.register_hook(self._sum_grad_over_ranks)
        return out, total_count

    def _all_reduce(self, tensor) -> None:
        start = time.perf_counter()
        _dist().all_reduce(tensor, group=self.process_group)
        self.comm_seconds += time.perf_counter() - start

    def _sum_grad_over_ranks(self, grad):
        w = self._grad_weight() if self._grad_weight is not None else 1.0
        with no_grad():
            summed = grad * w
            self._all_reduce(summed)
            if w != 1.0:
                summed = summed / w if w > 0 else summed * 0.0
        return summed

    def _update_running(self, mean, var, total: float) -> None:
        with no_grad():
            factor = 0.0 if self.momentum is None else self.momentum
            if self.num_batches_tracked is not None:
                self.num_batches_tracked.add_(1)
                if self.momentum is None:
                    factor = 1.0 / float(self.num_batches_tracked.item())
            unbiased = var * (total / (total - 1.0))
            self.running_mean.mul_(1.0 - factor).add_(mean * factor)
            self.running_var.mul_(1.0 - factor).add_(unbiased * factor)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """Returns `module` with every BatchNorm*d replaced by a SyncBatchNorm holding the
        same parameters, buffers and training mode (the module itself if it is one)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
                bias=module.bias is not None or not module.affine,
            )
            if module.affine:
                out.weight = module.weight
                if module.bias is not None:
                    out.bias = module.bias
            if module.track_running_stats:
                out.running_mean = module.running_mean
                out.running_var = module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            out.train(module.training)
            return out
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child, process_group)
            if converted is not child:
                setattr(module, name, converted)
        return module
