"""Stacked Hourglass (Newell et al. 2016) for landmark heatmaps at 1/4 of the input, with intermediate
supervision: every stack predicts heatmaps, and each stack's prediction is fed back into the next."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, LandmarkNet
from .layers import conv_bn, stem_conv


class Residual(nn.Module):
    """Pre-activation bottleneck residual module: BN-ReLU-1x1 (c/2), BN-ReLU-3x3, BN-ReLU-1x1 (c)."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        mid = out // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(inp), nn.ReLU(inplace=True), nn.Conv2d(inp, mid, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, 1, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, out, 1, bias=False),
        )
        self.skip = nn.Conv2d(inp, out, 1, bias=False) if inp != out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` halvings: a skip branch at each scale plus a pooled, recursive branch."""

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.up = Residual(channels, channels)
        self.down = Residual(channels, channels)
        self.inner = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.after = Residual(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.after(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(LandmarkNet):
    """``stacks`` hourglasses after a stem that brings the input to 1/4 resolution.

    ``forward`` returns the last stack's (B, N, H/4, W/4) heatmaps; ``forward_train`` returns every stack's,
    for intermediate supervision.
    """

    def __init__(self, n_points: int = 68, stacks: int = 2, channels: int = 128, depth: int = 4,
                 coordconv: bool = False) -> None:
        super().__init__()
        half = channels // 2  # the original's stem (64, 128 channels) at channels = 128, scaled with the width
        self.stem = nn.Sequential(stem_conv(3, half, 7, 2, coordconv), Residual(half, channels), nn.MaxPool2d(2),
                                  Residual(channels, channels), Residual(channels, channels))
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels) for _ in range(stacks))
        self.features = nn.ModuleList(nn.Sequential(Residual(channels, channels), conv_bn(channels, channels, 1))
                                      for _ in range(stacks))
        self.heads = nn.ModuleList(nn.Conv2d(channels, n_points, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1))
        self.merge_maps = nn.ModuleList(nn.Conv2d(n_points, channels, 1) for _ in range(stacks - 1))

    def _stacks(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for k, (hg, feat, head) in enumerate(zip(self.hourglasses, self.features, self.heads)):
            f = feat(hg(x))
            maps = head(f)
            outs.append(maps)
            if k < len(self.merge_maps):
                x = x + self.merge_features[k](f) + self.merge_maps[k](maps)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._stacks(x)[-1]

    def forward_train(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        return {"out": self._stacks(x)}


@MODELS.register("hourglass")
def build_hourglass(spec, stacks: int = 2, channels: int = 128, depth: int = 4,
                    coordconv: bool = False) -> StackedHourglass:
    return StackedHourglass(spec.n_points, stacks, channels, depth, coordconv)
