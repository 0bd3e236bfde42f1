"""phalanx.utils.data: datasets, samplers, the DataLoader, and image transforms.

PyTorch's torch.utils.data API (plus torchvision's datasets and transforms for the images the
examples use), with background threads instead of worker processes.
"""

from . import datasets, transforms
from ._worker import WorkerInfo, get_worker_info
from .balanced import BalancedDistributedSampler
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .datasets import CIFAR10, MNIST, FashionMNIST, SyntheticImages
from .distributed import DistributedSampler
from .idx import DEFAULT_FASHION_MNIST_ROOT, load_fashion_mnist, read_idx
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler

__all__ = [
    "CIFAR10",
    "DEFAULT_FASHION_MNIST_ROOT",
    "MNIST",
    "BalancedDistributedSampler",
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "FashionMNIST",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "SyntheticImages",
    "TensorDataset",
    "WorkerInfo",
    "datasets",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "load_fashion_mnist",
    "random_split",
    "read_idx",
    "transforms",
]
