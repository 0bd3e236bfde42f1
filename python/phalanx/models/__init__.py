"""Reference models, laid out so their state_dict keys match the usual PyTorch versions."""

from .lenet import LeNet5
from .mlp import MLP
from .mobilenet import MobileNetV1, mobilenet_v1
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from .yolo import DarknetMaxPool2d, TinyYOLOv2, tiny_yolov2_backbone

__all__ = [
    "LeNet5",
    "MLP",
    "MobileNetV1",
    "mobilenet_v1",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "DarknetMaxPool2d",
    "TinyYOLOv2",
    "tiny_yolov2_backbone",
]
