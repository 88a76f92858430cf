"""Building blocks shared by the model files."""
from __future__ import annotations

import torch
import torch.nn as nn


def conv_bn(inp: int, out: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (same padding, no bias) + BatchNorm (+ ReLU)."""
    layers: list[nn.Module] = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (stride), 1x1 linear projection, optional residual."""

    def __init__(self, inp: int, out: int, stride: int, expand: int, residual: bool) -> None:
        super().__init__()
        if residual and (stride != 1 or inp != out):
            raise ValueError("a residual block needs stride 1 and equal channels")
        hidden = inp * expand
        self.residual = residual
        self.conv = nn.Sequential(
            conv_bn(inp, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            conv_bn(hidden, out, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def scaled(channels: int, width: float, minimum: int = 8) -> int:
    """Channels times a width multiplier, rounded to a multiple of 8 (at least ``minimum``)."""
    return max(minimum, int(channels * width + 4) // 8 * 8)
