"""Datasets: MNIST, FashionMNIST, CIFAR10 and SyntheticImages."""

from ._download import check_integrity, download_url
from ._vision import VisionDataset
from .cifar import CIFAR10
from .mnist import MNIST, FashionMNIST, default_cache_dir
from .synthetic import SyntheticImages

__all__ = [
    "CIFAR10",
    "MNIST",
    "FashionMNIST",
    "SyntheticImages",
    "VisionDataset",
    "check_integrity",
    "default_cache_dir",
    "download_url",
]
