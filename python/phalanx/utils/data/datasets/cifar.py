"""CIFAR-10 from its binary distribution (cifar-10-binary.tar.gz, extracted).

data_batch_1.bin .. data_batch_5.bin (training, 50000 images) and test_batch.bin (10000): each
a sequence of 3073-byte records, one label byte then the 32x32 image as red, green and blue
planes. The files are parsed in C++ straight into uint8 [N, 3, 32, 32] -- the planar file
layout is already NCHW, so no transposition (torchvision's CIFAR10.data is NHWC instead).
"""

from __future__ import annotations

import os

from .... import _C
from ._vision import VisionDataset

__all__ = ["CIFAR10"]


class CIFAR10(VisionDataset):
    base_folder = "cifar-10-batches-bin"
    train_list = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_list = ["test_batch.bin"]
    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None) -> None:
        super().__init__(root, transform, target_transform)
        self.train = train
        if not os.path.isdir(self.root):
            raise FileNotFoundError(
                f"CIFAR-10 directory not found: {self.root}; pass the "
                "directory holding the .bin files (or its parent holding "
                f"{self.base_folder}/)"
            )
        folder = self.root
        nested = os.path.join(self.root, self.base_folder)
        names = self.train_list if train else self.test_list
        if not os.path.isfile(os.path.join(folder, names[0])) and os.path.isdir(nested):
            folder = nested
        paths = [os.path.join(folder, n) for n in names]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f"CIFAR-10 file not found: {', '.join(missing)}; extract "
                "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html"
            )
        images, labels = _C.data.read_cifar10(paths)
        self._set_arrays(images.numpy(), labels.numpy())
