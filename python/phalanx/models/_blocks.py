"""ConvBNAct: the conv -> batch norm -> activation unit that MobileNet and YOLO are built from."""

from __future__ import annotations

from .. import nn


class ConvBNAct(nn.Sequential):
    """Conv2d without bias (BN's shift replaces it), BatchNorm2d, then `activation`.

    A Sequential, so its keys are '0.weight' (conv) and '1.*' (BN), as in torchvision's
    Conv2dNormActivation, and a spatial planner sees plain layers in order.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            activation if activation is not None else nn.ReLU(inplace=True),
        )
