"""What Conv1d, Conv2d and ConvTranspose2d share: their constructor's argument checks and
normalisation to n-tuples, the weight and bias with PyTorch's default initialisation, and
extra_repr. Each layer keeps only its own forward (and its own padding rules)."""

from __future__ import annotations

import math

from ... import _C
from .. import init
from ..parameter import Parameter
from ._arguments import check_count, check_window
from .module import Module


def ntuple(value, n: int) -> tuple:
    """An int repeated n times, or the given sequence as a tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _check_channels(layer: str, in_channels, out_channels, groups) -> None:
    if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0:
        raise ValueError(f"{layer}: groups must be a positive integer, got {groups!r}")
    check_count(layer, "in_channels", in_channels)
    check_count(layer, "out_channels", out_channels)
    for name, count in (("in_channels", in_channels), ("out_channels", out_channels)):
        if count % groups:
            raise ValueError(f"{layer}: {name}={count} must be divisible by groups={groups}")


def _check_padding(layer: str, n: int, padding, stride, transposed: bool) -> None:
    if not isinstance(padding, str) or transposed:  # a transposed one takes no strings
        check_window(layer, "padding", padding, 0)
        return
    if padding not in ("same", "valid"):
        raise ValueError(
            f"{layer}: Invalid padding string '{padding}', should be one of {{'valid', 'same'}}"
        )
    if padding == "same" and ntuple(stride, n) != (1,) * n:
        raise ValueError(f"{layer}: padding='same' is not supported for strided convolutions")


class ConvNd(Module):
    """Attributes as PyTorch's _ConvNd: in_channels, out_channels, kernel_size, stride,
    padding (n-tuple or 'same'/'valid'), dilation, output_padding, transposed, groups,
    padding_mode, weight and bias."""

    def _setup(
        self,
        layer: str,
        n: int,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        bias: bool,
        padding_mode: str,
        padding_modes: tuple[str, ...] = ("zeros",),
        transposed: bool = False,
        output_padding=0,
    ) -> None:
        _check_channels(layer, in_channels, out_channels, groups)
        check_window(layer, "kernel_size", kernel_size, 1)
        check_window(layer, "stride", stride, 1)
        check_window(layer, "dilation", dilation, 1)
        _check_padding(layer, n, padding, stride, transposed)
        check_window(layer, "output_padding", output_padding, 0)
        if padding_mode not in padding_modes:
            allowed = " or ".join(f'"{m}"' for m in padding_modes)
            raise ValueError(f'{layer}: padding_mode must be {allowed}, got "{padding_mode}"')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = ntuple(kernel_size, n)
        self.stride = ntuple(stride, n)
        self.padding = padding if isinstance(padding, str) else ntuple(padding, n)
        self.dilation = ntuple(dilation, n)
        self.output_padding = ntuple(output_padding, n)
        for i in range(n):
            if self.output_padding[i] >= max(self.stride[i], self.dilation[i]):
                raise ValueError(
                    f"{layer}: output padding must be smaller than either stride or dilation, "
                    f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
                )
        self.transposed = transposed
        self.groups = groups
        self.padding_mode = padding_mode
        # PyTorch's layouts: (out, in / groups, *k), transposed (in, out / groups, *k)
        if transposed:
            shape = [in_channels, out_channels // groups, *self.kernel_size]
        else:
            shape = [out_channels, in_channels // groups, *self.kernel_size]
        self.weight = Parameter(_C.empty(shape))
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

    def extra_repr(self) -> str:
        n = len(self.kernel_size)
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0,) * n:  # PyTorch prints 'valid' and 'same' too
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
