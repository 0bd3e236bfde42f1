"""phalanx.optim: PyTorch's optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta) plus
LARS for large batches.

Each optimizer updates a whole param group with one fused C++ call (phalanx._C.optim);
this package keeps the param groups, per-parameter state and state_dicts.
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .large_batch import large_batch_optimizer
from .lars import LARS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "LARS",
    "large_batch_optimizer",
    "lr_scheduler",
]
