"""BatchNorm1d / BatchNorm2d with PyTorch's running-statistics bookkeeping.

The arithmetic (normalise, update running mean and unbiased variance in place) is in
F.batch_norm; the module decides which statistics to use and with what averaging factor.
"""

from __future__ import annotations

from ... import _C
from ...autograd import no_grad
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module


class _BatchNorm(Module):
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(_C.empty([num_features]))
            if bias:
                self.bias = Parameter(_C.empty([num_features]))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _C.zeros([num_features]))
            self.register_buffer("running_var", _C.ones([num_features]))
            self.register_buffer("num_batches_tracked", _C.zeros([], dtype=_C.dtype.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1.0)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input) -> None:
        raise NotImplementedError

    def forward(self, input):
        return F.batch_norm(*self._arguments(input))

    def _forward_relu(self, input):
        """relu(self(input)) in one oneDNN pass where the input allows (see bn_relu)."""
        return _C.nn.batch_norm_relu(*self._arguments(input))

    def _arguments(self, input):
        """F.batch_norm's arguments for this input; counts the batch when tracking."""
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average over all batches so far
                factor = 1.0 / float(self.num_batches_tracked.item())
        # batch statistics in training, and in eval when no running statistics exist
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep_running = not self.training or self.track_running_stats
        return (
            input,
            self.running_mean if keep_running else None,
            self.running_var if keep_running else None,
            self.weight,
            self.bias,
            use_batch_stats,
            0.0 if factor is None else factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) inputs."""

    def _check_input_dim(self, input) -> None:
        if input.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) inputs."""

    def _check_input_dim(self, input) -> None:
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


def _plain_module(m) -> bool:
    return not (m._forward_hooks or m._forward_pre_hooks)


def bn_relu(bn, relu, input):
    """relu(bn(input)) for a batch norm module followed by a ReLU module: one oneDNN pass
    (fuse_norm_relu) when neither has hooks (they would see no intermediate value), else the
    two modules called in turn. Exact against the two: the same normalisation, the same mask."""
    from .activation import ReLU

    if (
        isinstance(bn, _BatchNorm)
        and type(relu) is ReLU
        and _plain_module(bn)
        and _plain_module(relu)
    ):
        return bn._forward_relu(input)
    return relu(bn(input))
