"""CU-Net (Tang et al. 2018, "Quantized Densely Connected U-Nets"): stacked U-Nets coupled level by level.

A stack of ``stacks`` small U-Nets after a stem at 1/4 of the input, each predicting heatmaps (intermediate
supervision, as Hourglass). The coupling: at every resolution level, each U-Net's block reads, beside its
own path, the features that the previous U-Nets made at the same level (on the way down and on the way
up), as a DenseNet block reads all earlier layers; ``order`` limits how many previous U-Nets (the paper's
order-K connectivity). Every block makes only ``growth`` new channels (a 1x1 bottleneck then a 3x3), so the
concatenations stay narrow; that, not wide layers, is where CU-Net's parameter savings come from. The
paper's memory sharing is an implementation detail of training on a GPU (left out here); its quantisation
is ``facemark quantize``'s int8 export.

``coupled: false`` is the ablation: the same blocks, each U-Net reading only its own path and the previous
U-Net's output (plain stacked U-Nets).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, LandmarkNet
from .layers import conv_bn, stem_conv


class DenseBlock(nn.Module):
    """BN-ReLU-1x1 (2 x growth: DenseNet's is 4x, halved for the CPU budget) then BN-ReLU-3x3 (growth):
    ``inp`` channels in, ``growth`` out."""

    def __init__(self, inp: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(inp), nn.ReLU(inplace=True), nn.Conv2d(inp, 2 * growth, 1, bias=False),
                                  nn.BatchNorm2d(2 * growth), nn.ReLU(inplace=True),
                                  nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.body(torch.cat(xs, dim=1) if len(xs) > 1 else xs[0])


class CoupledUNet(nn.Module):
    """U-Net number ``index`` of the stack: ``depth`` levels down and back up, each block reading its own path
    plus the same level's features of the ``earlier`` previous U-Nets."""

    def __init__(self, inp: int, growth: int, depth: int, earlier: int) -> None:
        super().__init__()
        g = growth
        self.down = nn.ModuleList(DenseBlock((inp if level == 0 else g) + earlier * g, g) for level in range(depth))
        self.bottom = DenseBlock(g + earlier * g, g)
        self.up = nn.ModuleList(DenseBlock(2 * g + earlier * g, g) for _ in range(depth))

    def forward(self, x: torch.Tensor, earlier: list[dict[str, list[torch.Tensor]]]
                ) -> dict[str, list[torch.Tensor]]:
        """``earlier``: the previous U-Nets' level features (``down``: one per level, ``up``: one per level,
        finest first); returns this U-Net's."""
        downs = []
        for level, block in enumerate(self.down):
            x = block([x] + [e["down"][level] for e in earlier])
            downs.append(x)
            x = F.max_pool2d(x, 2)
        y = bottom = self.bottom([x] + [e["bottom"][0] for e in earlier])
        ups: list[torch.Tensor] = []
        for level in reversed(range(len(self.up))):
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            y = self.up[level]([y, downs[level]] + [e["up"][level] for e in earlier])
            ups.insert(0, y)
        return {"down": downs, "bottom": [bottom], "up": ups}


class CUNet(LandmarkNet):
    """``stacks`` coupled U-Nets of ``depth`` levels and ``growth`` channels per block after a ``channels``-wide
    stem at 1/4 resolution; each U-Net's finest output makes heatmaps. ``forward`` returns the last U-Net's
    (B, N, H/4, W/4) heatmaps, ``forward_train`` every U-Net's."""

    def __init__(self, n_points: int = 68, stacks: int = 4, growth: int = 16, depth: int = 3, channels: int = 32,
                 order: int = 2, coupled: bool = True) -> None:
        super().__init__()
        self.order = order if coupled else 0
        self.stem = nn.Sequential(stem_conv(3, channels, 3, 2), conv_bn(channels, channels, 3, 2))   # HRNet's
        # U-Net i reads the stem's features and the previous U-Nets' outputs at its input (as Hourglass feeds
        # each stack's heatmaps forward), and with coupling, min(i, order) earlier U-Nets at every level
        self.unets = nn.ModuleList(CoupledUNet(channels + min(i, max(self.order, 1)) * growth, growth, depth,
                                               min(i, self.order)) for i in range(stacks))
        self.heads = nn.ModuleList(nn.Conv2d(growth, n_points, 1) for _ in range(stacks))

    def _stacks(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.stem(x)
        done: list[dict[str, list[torch.Tensor]]] = []
        maps = []
        for unet, head in zip(self.unets, self.heads):
            inputs = [d["up"][0] for d in done[-max(self.order, 1):]] if done else []
            feats = unet(torch.cat([stem, *inputs], dim=1), done[-self.order:] if self.order else [])
            done.append(feats)
            maps.append(head(feats["up"][0]))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._stacks(x)[-1]

    def forward_train(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        return {"out": self._stacks(x)}


@MODELS.register("cunet")
def build_cunet(spec, stacks: int = 4, growth: int = 16, depth: int = 3, channels: int = 32, order: int = 2,
                coupled: bool = True) -> CUNet:
    return CUNet(spec.n_points, stacks, growth, depth, channels, order, coupled)
