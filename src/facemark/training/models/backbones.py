"""Classification backbones written here (torchvision does not import beside this torch): ResNet-18 and
MobileNetV2, as feature extractors with output stride 32 (or 16, by keeping the last stage at stride 1).

``BACKBONES.build(name, output_stride=..., **settings)``; every backbone states its ``out_channels`` and
``stride`` (input pixels per feature cell), which is all a head needs to know. A new backbone is a class
here with one ``BACKBONES.register`` line.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...core.registry import Registry
from .layers import BasicBlock, InvertedResidual, conv_bn, scaled, stem_conv

BACKBONES: Registry = Registry("backbone")


def _check_stride(name: str, output_stride: int) -> int:
    if output_stride not in (16, 32):
        raise ValueError(f"backbone {name}: output stride 16 or 32, not {output_stride}")
    return output_stride


@BACKBONES.register("resnet18")
class ResNet18(nn.Module):
    """ResNet-18 up to layer4: (B, 512, H/32, W/32) features."""

    def __init__(self, output_stride: int = 32, coordconv: bool = False) -> None:
        super().__init__()
        self.stride = _check_stride("resnet18", output_stride)
        self.stem = nn.Sequential(stem_conv(3, 64, 7, 2, coordconv), nn.MaxPool2d(3, 2, 1))
        layers, inp = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2 if output_stride == 32 else 1)):
            layers += [BasicBlock(inp, planes, stride), BasicBlock(planes, planes)]
            inp = planes
        self.layers = nn.Sequential(*layers)
        self.out_channels = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


# (expansion t, channels c, repeats n, first stride s) of MobileNetV2
_MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@BACKBONES.register("mobilenetv2")
class MobileNetV2(nn.Module):
    """MobileNetV2 features (ReLU activations) ending in a 1x1 conv to ``out_channels`` (default 1280, or
    1280 x width above width 1, as in the paper)."""

    def __init__(self, width: float = 1.0, output_stride: int = 32, coordconv: bool = False,
                 out_channels: int | None = None) -> None:
        super().__init__()
        self.stride = _check_stride("mobilenetv2", output_stride)
        inp = scaled(32, width)
        blocks: list[nn.Module] = [stem_conv(3, inp, 3, 2, coordconv)]
        for t, c, n, s in _MBV2:
            out = scaled(c, width)
            if c == 160 and output_stride == 16:
                s = 1
            for i in range(n):
                stride = s if i == 0 else 1
                blocks.append(InvertedResidual(inp, out, stride, t, residual=stride == 1 and inp == out))
                inp = out
        self.out_channels = out_channels or scaled(1280, max(1.0, width))
        blocks.append(conv_bn(inp, self.out_channels, 1))
        self.features = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
