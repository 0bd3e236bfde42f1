"""Conv2d: a learnable 2-D convolution over phalanx.nn.functional.conv2d."""

from __future__ import annotations

from .. import functional as F
from ._conv_base import ConvNd


def _same_padding(kernel_size, dilation) -> tuple[int, int]:
    """Symmetric padding that keeps the size at stride 1; odd total padding has no such form."""
    pads = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        if total % 2:
            raise ValueError(
                f"Conv2d: padding='same' needs asymmetric padding for kernel_size={kernel_size}, "
                f"dilation={dilation}, which phalanx does not support; give explicit padding"
            )
        pads.append(total // 2)
    return tuple(pads)


class Conv2d(ConvNd):
    """weight: (out_channels, in_channels / groups, kH, kW); bias: (out_channels,) or None."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self._setup(
            "Conv2d",
            2,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
        )
        self._padding_amounts()  # rejects a 'same' that would need asymmetric padding, now

    def _padding_amounts(self) -> tuple[int, int]:
        if self.padding == "valid":
            return (0, 0)
        if self.padding == "same":
            return _same_padding(self.kernel_size, self.dilation)
        return self.padding

    def forward(self, input):
        return self._forward(F.conv2d, input)

    def _forward_relu(self, input):
        """relu(self(input)) in one oneDNN pass (see conv_relu)."""
        return self._forward(F._conv2d_relu, input)

    def _forward(self, conv, input):
        return conv(
            input,
            self.weight,
            self.bias,
            self.stride,
            self._padding_amounts(),
            self.dilation,
            self.groups,
        )


def conv_relu(conv, relu, input):
    """relu(conv(input)) for a Conv2d followed by a ReLU module: one oneDNN pass (a ReLU
    post-op) when neither has hooks (they would see no intermediate value), else the two
    modules called in turn. Exact against the two: the same sums, the same mask (NaN kept)."""
    from .activation import ReLU
    from .batchnorm import _plain_module

    if type(conv) is Conv2d and type(relu) is ReLU and _plain_module(conv) and _plain_module(relu):
        return conv._forward_relu(input)
    return relu(conv(input))
