"""LeNet-5 (LeCun et al., 1998) in its common modern form: ReLU and max pooling.

The classic network reads 32x32 images. MNIST-style 28x28 images get padding=2 in the first
convolution instead, which gives the same 28x28 C1 maps, the same 16x5x5 features and the same
61,706 parameters (padding adds none).
"""

from __future__ import annotations

from .. import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5: input_size must be 28 or 32, got {input_size}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2 if input_size == 28 else 0),  # C1
            nn.ReLU(),
            nn.MaxPool2d(2),  # S2
            nn.Conv2d(6, 16, kernel_size=5),  # C3
            nn.ReLU(),
            nn.MaxPool2d(2),  # S4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),  # C5 (a 5x5 conv over a 5x5 map is this linear layer)
            nn.ReLU(),
            nn.Linear(120, 84),  # F6
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
