"""Conv1d and ConvTranspose2d over phalanx.nn.functional (both end in oneDNN's convolution)."""

from __future__ import annotations

import math

from ... import _C
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._arguments import check_count, check_window
from .module import Module


def _tuple(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _check_channels(layer, in_channels, out_channels, groups):
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{layer}: groups must be a positive integer, got {groups!r}")
    check_count(layer, "in_channels", in_channels)
    check_count(layer, "out_channels", out_channels)
    if in_channels % groups:
        raise ValueError(f"{layer}: in_channels={in_channels} must be divisible by groups={groups}")
    if out_channels % groups:
        raise ValueError(
            f"{layer}: out_channels={out_channels} must be divisible by groups={groups}"
        )


class _ConvBase(Module):
    def reset_parameters(self) -> None:
        # PyTorch's default: a uniform fan-in bound of 1/sqrt(fan_in) for weight and bias alike
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _make_params(self, weight_shape, out_channels, bias):
        self.weight = Parameter(_C.empty(list(weight_shape)))
        if bias:
            self.bias = Parameter(_C.empty([out_channels]))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding not in ((0,) * len(self.kernel_size), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.kernel_size):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvBase):
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
        layer = "Conv1d"
        _check_channels(layer, in_channels, out_channels, groups)
        check_window(layer, "kernel_size", kernel_size, 1)
        check_window(layer, "stride", stride, 1)
        check_window(layer, "dilation", dilation, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and _tuple(stride, 1) != (1,):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            check_window(layer, "padding", padding, 0)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(
                f"{layer}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                f"got '{padding_mode}'"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, 1)
        self.stride = _tuple(stride, 1)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, 1)
        self.dilation = _tuple(dilation, 1)
        self.groups = groups
        self.padding_mode = padding_mode
        self.output_padding = (0,)
        self.transposed = False
        self._make_params(
            (out_channels, in_channels // groups, *self.kernel_size), out_channels, bias
        )

    def forward(self, input):
        if self.padding_mode != "zeros" and not isinstance(self.padding, str):
            (p,) = self.padding
            x = F.pad(input, (p, p), mode=self.padding_mode)
            return F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv1d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class ConvTranspose2d(_ConvBase):
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
        layer = "ConvTranspose2d"
        _check_channels(layer, in_channels, out_channels, groups)
        check_window(layer, "kernel_size", kernel_size, 1)
        check_window(layer, "stride", stride, 1)
        check_window(layer, "dilation", dilation, 1)
        check_window(layer, "padding", padding, 0)
        check_window(layer, "output_padding", output_padding, 0)
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for {layer}, got "{padding_mode}"'
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, 2)
        self.stride = _tuple(stride, 2)
        self.padding = _tuple(padding, 2)
        self.output_padding = _tuple(output_padding, 2)
        self.dilation = _tuple(dilation, 2)
        for i in range(2):
            if self.output_padding[i] >= max(self.stride[i], self.dilation[i]):
                raise ValueError(
                    f"{layer}: output padding must be smaller than either stride or dilation, "
                    f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
                )
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = True
        self._make_params(
            (in_channels, out_channels // groups, *self.kernel_size), out_channels, bias
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
