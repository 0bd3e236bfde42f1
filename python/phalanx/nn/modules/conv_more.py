"""Conv1d and ConvTranspose2d over phalanx.nn.functional (oneDNN convolution, deconvolution)."""

from __future__ import annotations

from .. import functional as F
from ._conv_base import ConvNd


class Conv1d(ConvNd):
    """weight: (out_channels, in_channels / groups, kernel); padding may be 'same'/'valid';
    padding_mode 'zeros', 'reflect', 'replicate' or 'circular'."""

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
            "Conv1d",
            1,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            padding_modes=("zeros", "reflect", "replicate", "circular"),
        )

    def forward(self, input):
        if self.padding_mode != "zeros" and not isinstance(self.padding, str):
            (p,) = self.padding
            x = F.pad(input, (p, p), mode=self.padding_mode)
            return F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv1d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class ConvTranspose2d(ConvNd):
    """weight: (in_channels, out_channels / groups, kH, kW). forward(input, output_size=None)
    picks output_padding so the output has output_size, as PyTorch's does."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self._setup(
            "ConvTranspose2d",
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
            transposed=True,
            output_padding=output_padding,
        )

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        sizes = list(output_size)[-2:]
        spatial = list(input.shape[-2:])
        result = []
        for i in range(2):
            smallest = (
                (spatial[i] - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            largest = smallest + self.stride[i] - 1
            if not smallest <= sizes[i] <= largest:
                raise ValueError(
                    f"ConvTranspose2d: requested an output size of {sizes}, but valid sizes "
                    f"range from {smallest} to {largest} (for an input of {spatial})"
                )
            result.append(sizes[i] - smallest)
        return tuple(result)

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )
