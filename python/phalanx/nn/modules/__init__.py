"""The layer classes of phalanx.nn, one file per family."""

from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import Identity, ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, RemovableHandle
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .syncbatchnorm import SyncBatchNorm

__all__ = [
    "Module",
    "RemovableHandle",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "Identity",
    "Conv2d",
    "Linear",
    "BatchNorm1d",
    "BatchNorm2d",
    "SyncBatchNorm",
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "GELU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "Dropout",
    "Flatten",
    "CrossEntropyLoss",
    "MSELoss",
    "NLLLoss",
]
