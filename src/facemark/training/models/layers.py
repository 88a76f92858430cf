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
            conv_bn(inp, hidden, 1) if expand != 1 else nn.Identity(),
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


class CoordConv2d(nn.Module):
    """CoordConv (Liu et al. 2018): append x and y coordinate channels in [-1, 1] (and optionally the radius)
    before a convolution, so the filters can tell where they are."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = False,
                 with_r: bool = False) -> None:
        super().__init__()
        self.with_r = with_r
        self.conv = nn.Conv2d(inp + 2 + int(with_r), out, kernel, stride, padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ys = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
        extra = [xs, ys]
        if self.with_r:
            r = torch.sqrt(xs ** 2 + ys ** 2)
            extra.append(r / r.amax())
        return self.conv(torch.cat([x, *extra], dim=1))


def stem_conv(inp: int, out: int, kernel: int, stride: int, coordconv: bool = False) -> nn.Sequential:
    """A model's first conv + BN + ReLU, optionally a CoordConv."""
    conv = (CoordConv2d(inp, out, kernel, stride, kernel // 2) if coordconv
            else nn.Conv2d(inp, out, kernel, stride, kernel // 2, bias=False))
    return nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with a (projected when needed) identity shortcut."""

    expansion = 1

    def __init__(self, inp: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.body = nn.Sequential(conv_bn(inp, planes, 3, stride), conv_bn(planes, out, 3, relu=False))
        self.short = conv_bn(inp, out, 1, stride, relu=False) if stride != 1 or inp != out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce, 3x3, 1x1 expand (x4), with a shortcut."""

    expansion = 4

    def __init__(self, inp: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.body = nn.Sequential(conv_bn(inp, planes, 1), conv_bn(planes, planes, 3, stride),
                                  conv_bn(planes, out, 1, relu=False))
        self.short = conv_bn(inp, out, 1, stride, relu=False) if stride != 1 or inp != out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


class VisibilityHead(nn.Module):
    """Per-point visibility (LUVLi's visibility, read from a heatmap model's features): a small conv stack
    makes one map per point from the head's features, the heatmaps themselves (a covered point's heatmap is low
    and spread) and the stem's features (``low``: edges and colour, which the head's features, trained to find
    points under any cover, keep little of), with a 3x3 and two dilated 3x3 convolutions for the context
    around each place (an occluder is larger than a point), read where that point's heatmap puts it (its
    squared positive part, normalised). Nothing it reads is trained through, so the points stay as they were.
    Returns (B, N) logits."""

    def __init__(self, channels: int, n_points: int, low: int = 0, hidden: int = 32) -> None:
        super().__init__()
        self.maps = nn.Sequential(conv_bn(channels + n_points + low, hidden, 1), conv_bn(hidden, hidden, 3),
                                  *(m for d in (2, 4) for m in (
                                      nn.Conv2d(hidden, hidden, 3, padding=d, dilation=d, bias=False),
                                      nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))),
                                  nn.Conv2d(hidden, n_points, 1))

    def forward(self, features: torch.Tensor, heatmaps: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        heatmaps, low = heatmaps.detach(), low.detach()      # ``low`` at the heatmaps' resolution
        w = torch.relu(heatmaps).square().flatten(2)
        w = w / (w.sum(dim=2, keepdim=True) + 1e-6)
        return (self.maps(torch.cat([features.detach(), heatmaps, low], dim=1)).flatten(2) * w).sum(dim=2)
