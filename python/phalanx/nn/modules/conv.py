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
        return F.conv2d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self._padding_amounts(),
            self.dilation,
            self.groups,
        )
