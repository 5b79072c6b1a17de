# A differently written model file: helpers below their users, decorators,
# a class inheriting from another block, module constants and a nested function.
import math
from functools import lru_cache

import torch
from torch import nn

WIDTH = 16


class Stem(nn.Module):
    def __init__(self, channels: int = 3, width: int = WIDTH) -> None:
        super().__init__()
        self.conv = conv3x3(channels, width)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activation(self.norm(self.conv(x)))


class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(width, width), nn.BatchNorm2d(width))

    def forward(self, x):
        return activation(x + self.body(x))


class ScaledResidual(Residual):
    """Same as Residual with a learned scale on the branch."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return activation(x + self.scale * self.body(x))


@lru_cache(maxsize=None)
def padding_for(kernel: int) -> int:
    return kernel // 2


def conv3x3(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=padding_for(3), bias=False)


def activation(x):
    def clip(t):
        return torch.clamp(t, min=0.0)

    return clip(x) * math.sqrt(1.0)


class Net(nn.Module):
    def __init__(self, num_classes=10, in_channels=3):
        super().__init__()
        self.stem = Stem(in_channels)
        self.blocks = nn.Sequential(Residual(WIDTH), ScaledResidual(WIDTH))
        self.head = nn.Linear(WIDTH, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))
