"""The layer classes of phalanx.nn, one file per family."""

from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import Identity, ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .conv_more import Conv1d, ConvTranspose2d
from .dropout import Dropout, Dropout1d, Dropout2d
from .extra import (
    ELU,
    AdaptiveAvgPool1d,
    AvgPool1d,
    ConstantPad1d,
    ConstantPad2d,
    CosineSimilarity,
    Hardsigmoid,
    Hardswish,
    MaxPool1d,
    Mish,
    PReLU,
    ReflectionPad1d,
    ReflectionPad2d,
    ReplicationPad1d,
    ReplicationPad2d,
    Softplus,
    Unflatten,
    ZeroPad1d,
    ZeroPad2d,
)
from .flatten import Flatten
from .linear import Linear
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module, RemovableHandle
from .normalization import GroupNorm, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sparse import Embedding
from .syncbatchnorm import SyncBatchNorm
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

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
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "KLDivLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "Conv1d",
    "ConvTranspose2d",
    "LayerNorm",
    "GroupNorm",
    "Embedding",
    "SiLU",
    "Dropout1d",
    "Dropout2d",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "MaxPool1d",
    "AvgPool1d",
    "AdaptiveAvgPool1d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ZeroPad1d",
    "ZeroPad2d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "Unflatten",
    "ELU",
    "Softplus",
    "Hardswish",
    "Hardsigmoid",
    "Mish",
    "PReLU",
    "CosineSimilarity",
]
