"""Conv2d: a learnable 2-D convolution over phalanx.nn.functional.conv2d."""

from __future__ import annotations

import math

from ... import _C
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._arguments import check_count, check_window
from .module import Module


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


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


class Conv2d(Module):
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
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise ValueError(
                f"Conv2d: padding_mode '{padding_mode}' is not supported; only 'zeros'"
            )
        check_count("Conv2d", "in_channels", in_channels)
        check_count("Conv2d", "out_channels", out_channels)
        check_window("Conv2d", "kernel_size", kernel_size, 1)
        check_window("Conv2d", "stride", stride, 1)
        check_window("Conv2d", "dilation", dilation, 1)
        if not isinstance(padding, str):
            check_window("Conv2d", "padding", padding, 0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.dilation = _pair(dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self._padding_amounts()  # rejects a 'same' that would need asymmetric padding, now
        self.output_padding = (0, 0)
        self.transposed = False
        self.groups = groups
        self.padding_mode = padding_mode
        self.weight = Parameter(_C.empty([out_channels, in_channels // groups, *self.kernel_size]))
        if bias:
            self.bias = Parameter(_C.empty([out_channels]))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's default: a uniform fan-in bound of 1/sqrt(fan_in) for weight and bias alike
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

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

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


def conv_relu(conv, relu, input):
    """relu(conv(input)) for a Conv2d followed by a ReLU module: one oneDNN pass (a ReLU
    post-op) when neither has hooks (they would see no intermediate value), else the two
    modules called in turn. Exact against the two: the same sums, the same mask (NaN kept)."""
    from .activation import ReLU
    from .batchnorm import _plain_module

    if type(conv) is Conv2d and type(relu) is ReLU and _plain_module(conv) and _plain_module(relu):
        return conv._forward_relu(input)
    return relu(conv(input))
