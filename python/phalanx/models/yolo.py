"""Tiny-YOLOv2 (Redmon & Farhadi, 2017; darknet's yolov2-tiny-voc.cfg): the network that the
Raspberry-Pi spatial-partitioning work trains.

Nine convolutions: 3x3 conv-BN-LeakyReLU(0.1) with 16, 32, 64, 128, 256, 512 channels, each
followed by a 2x2 max pool (stride 2 for the first five), then 1024 and 1024 channels, then a
1x1 detection head with bias giving num_anchors * (5 + num_classes) maps (125 for VOC).
A 416x416 image gives a 13x13 grid.

Parameter count for VOC: 15,861,773 trainable parameters; with BN's running mean and variance
15,867,885 stored values -- the figure usually published, which is the size of darknet's
weights file (it saves the running statistics alongside the weights).

The sixth pool is darknet's 2x2 stride-1 pool that keeps 13x13: darknet pads one row and
column on the bottom/right and ignores the padding. phalanx's max_pool2d pads symmetrically
only, so DarknetMaxPool2d repeats the last row and column instead; max over a window is
unchanged by a repeated element, so this equals darknet's result exactly.
"""

from __future__ import annotations

from .. import _C, nn
from ._blocks import ConvBNAct


class DarknetMaxPool2d(nn.Module):
    """Stride-1 max pool that keeps the spatial size by padding bottom/right only."""

    def __init__(self, kernel_size: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x):
        pad = self.kernel_size - 1
        for dim in (2, 3):
            edge = x.narrow(dim, x.shape[dim] - 1, 1)
            x = _C.cat([x] + [edge] * pad, dim)
        return nn.functional.max_pool2d(x, self.kernel_size, stride=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride=1, pad_bottom_right={self.kernel_size - 1}"


class TinyYOLOv2(nn.Module):
    def __init__(self, num_classes: int = 20, num_anchors: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i, out in enumerate((16, 32, 64, 128, 256, 512)):
            layers.append(ConvBNAct(channels, out, 3, activation=nn.LeakyReLU(0.1)))
            layers.append(nn.MaxPool2d(2, 2) if i < 5 else DarknetMaxPool2d(2))
            channels = out
        for out in (1024, 1024):
            layers.append(ConvBNAct(channels, out, 3, activation=nn.LeakyReLU(0.1)))
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, num_anchors * (5 + num_classes), kernel_size=1)
        self.num_classes = num_classes
        self.num_anchors = num_anchors

    def forward(self, x):
        return self.head(self.features(x))


def tiny_yolov2_backbone(
    num_classes: int = 20, num_anchors: int = 5, in_channels: int = 3
) -> TinyYOLOv2:
    """The network up to and including the detection head (the region loss is not here)."""
    return TinyYOLOv2(num_classes, num_anchors, in_channels)
