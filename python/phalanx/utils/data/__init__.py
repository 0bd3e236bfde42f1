"""phalanx.utils.data: dataset readers (DataLoader and friends come later)."""

from .idx import DEFAULT_FASHION_MNIST_ROOT, load_fashion_mnist, read_idx

__all__ = ["DEFAULT_FASHION_MNIST_ROOT", "load_fashion_mnist", "read_idx"]
