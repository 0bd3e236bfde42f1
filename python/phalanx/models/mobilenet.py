"""MobileNet-v1 (Howard et al., 2017): a 3x3/2 conv, 13 depthwise-separable blocks, pool, fc.

With width_mult=1.0 and 1000 classes it has 4,231,976 parameters. ReLU follows every BN, as
in the paper; activation="relu6" gives the variant common in quantisation-friendly ports.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import nn
from ._blocks import ConvBNAct

# (output channels, stride) of the 13 depthwise-separable blocks, from the paper's Table 1
_BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]


class DepthwiseSeparable(nn.Module):
    """A 3x3 depthwise conv (one filter per channel) then a 1x1 pointwise conv mixing channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        activation: Callable[[], nn.Module],  # makes one activation module per call
    ) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(
            in_channels, in_channels, 3, stride, groups=in_channels, activation=activation()
        )
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, activation=activation())

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        in_channels: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation not in ("relu", "relu6"):
            raise ValueError(
                f"MobileNetV1: activation must be 'relu' or 'relu6', got '{activation}'"
            )

        def act():  # in place: overwrites the batch norm output it follows
            return nn.ReLU(inplace=True) if activation == "relu" else nn.ReLU6(inplace=True)

        def width(c: int) -> int:
            return max(1, int(c * width_mult))

        layers: list[nn.Module] = [ConvBNAct(in_channels, width(32), 3, stride=2, activation=act())]
        channels = width(32)
        for out, stride in _BLOCKS:
            layers.append(DepthwiseSeparable(channels, width(out), stride, act))
            channels = width(out)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.avgpool(self.features(x)).flatten(1))


def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0, **kwargs) -> MobileNetV1:
    return MobileNetV1(num_classes, width_mult, **kwargs)
