"""HRNet (Sun et al. 2019; the HRNetV2 head of its facial-landmark variant): parallel branches at 1/4, 1/8,
1/16 and 1/32 of the input that exchange information after every module, and heatmaps at 1/4 from all
branches upsampled and concatenated.

The exchange unit, for the output at branch i from the input at branch j: the input itself (j = i), a 1x1
conv then bilinear upsampling (j > i, lower resolution), or i - j strided 3x3 convs (j < i); the
contributions are summed.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.schemes import scheme
from .base import MODELS, LandmarkNet
from .boundary import BoundaryRefiner
from .layers import BasicBlock, Bottleneck, VisibilityHead, conv_bn, stem_conv


class Exchange(nn.Module):
    """Fuse n branches into n outputs (the multi-resolution exchange unit)."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        n = len(channels)
        self.paths = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(conv_bn(channels[j], channels[i], 1, relu=False))
                else:
                    steps = [conv_bn(channels[j], channels[j], 3, 2) for _ in range(i - j - 1)]
                    steps.append(conv_bn(channels[j], channels[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.paths.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = []
        for i, row in enumerate(self.paths):
            total = xs[i]
            for j, path in enumerate(row):
                if j == i:
                    continue
                y = path(xs[j])
                if j > i:
                    y = F.interpolate(y, size=xs[i].shape[-2:], mode="bilinear", align_corners=False)
                total = total + y
            outs.append(F.relu(total))
        return outs


class HRModule(nn.Module):
    """``blocks`` basic blocks on every branch, then an exchange."""

    def __init__(self, channels: list[int], blocks: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(c, c) for _ in range(blocks)]) for c in channels)
        self.exchange = Exchange(channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.exchange([b(x) for b, x in zip(self.branches, xs)])


class HRNet(LandmarkNet):
    """HRNet-W``width``: branches of width, 2, 4 and 8 x width channels; stages 2-4 repeat ``modules``
    HR modules of ``blocks`` basic blocks per branch. Outputs (B, N, H/4, W/4) heatmaps.

    The stem (two stride-2 convs and ``stem_blocks`` bottlenecks) is ``stem_channels`` wide, 64 in the paper;
    narrower stems and fewer blocks give the light variants that train on a 2-core CPU. With ``boundaries``
    the heatmaps are refined by a ``BoundaryRefiner`` (PropagationNet / ADNet, by ``attention``): training
    then sees both heads' heatmaps (``out``) and the boundary maps (``boundary``). Optional heads, each
    adding an output to ``forward`` in this order after the heatmaps: ``offsets`` (HIH's decimal part: (B, 2N, H/4,
    W/4) sub-cell offsets, ``codec: hih``) and ``visibility`` (a ``VisibilityHead`` reads each point's
    visibility from the head's and the stem's features: (B, N) probabilities)."""

    def __init__(self, n_points: int = 68, width: int = 18, blocks: int = 4, modules: tuple[int, ...] = (1, 4, 3),
                 stem_blocks: int = 4, coordconv: bool = False, stem_channels: int = 64,
                 visibility: bool = False, offsets: bool = False, n_boundaries: int = 0,
                 attention: str = "boundary") -> None:
        super().__init__()
        c = stem_channels
        self.stem = nn.Sequential(stem_conv(3, c, 3, 2, coordconv), conv_bn(c, c, 3, 2))
        c4 = c * Bottleneck.expansion
        self.layer1 = nn.Sequential(Bottleneck(c, c), *[Bottleneck(c4, c) for _ in range(stem_blocks - 1)])
        chans = [width * 2 ** k for k in range(4)]
        self.transitions = nn.ModuleList([
            nn.ModuleList([conv_bn(c4, chans[0], 3), conv_bn(c4, chans[1], 3, 2)]),
            conv_bn(chans[1], chans[2], 3, 2),
            conv_bn(chans[2], chans[3], 3, 2),
        ])
        self.stages = nn.ModuleList(
            nn.Sequential(*[HRModule(chans[:k + 2], blocks) for _ in range(m)]) for k, m in enumerate(modules))
        total = sum(chans[:len(modules) + 1])
        self.head = nn.Sequential(conv_bn(total, total, 1), nn.Conv2d(total, n_points, 1))
        self.offsets = nn.Conv2d(total, 2 * n_points, 1) if offsets else None
        self.refiner = BoundaryRefiner(total, n_points, n_boundaries, attention) if n_boundaries else None
        self.visibility = VisibilityHead(total, n_points, low=c) if visibility else None
        self.optional = (("offsets",) if offsets else ()) + (("visibility",) if visibility else ())

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.forward_train(x)
        maps = out["out"][-1] if isinstance(out["out"], list) else out["out"]
        outputs = (maps,) + tuple(out[k] for k in ("offsets",) if k in out)
        if "visibility" in out:
            outputs += (torch.sigmoid(out["visibility"]),)
        return outputs[0] if len(outputs) == 1 else outputs

    def forward_train(self, x: torch.Tensor) -> dict:
        stem = self.stem(x)
        features = self.head[0](self._features(stem))
        heatmaps = self.head[1](features)
        out: dict = {"out": heatmaps}
        if self.refiner is not None:
            boundary, refined = self.refiner(features, heatmaps)
            out = {"out": [heatmaps, refined], "boundary": boundary}
            heatmaps = refined
        if self.offsets is not None:
            out["offsets"] = self.offsets(features)
        if self.visibility is not None:
            out["visibility"] = self.visibility(features, heatmaps, stem)
        return out

    def _features(self, stem: torch.Tensor) -> torch.Tensor:
        """Every branch's last features (from the stem's output), upsampled to the finest and concatenated."""
        x = self.layer1(stem)
        xs = [t(x) for t in self.transitions[0]]
        for k, stage in enumerate(self.stages):
            if k > 0:
                xs = xs + [self.transitions[k](xs[-1])]
            xs = stage(xs)
        size = xs[0].shape[-2:]
        up = [xs[0]] + [F.interpolate(y, size=size, mode="bilinear", align_corners=False) for y in xs[1:]]
        return torch.cat(up, dim=1)


@MODELS.register("hrnet")
def build_hrnet(spec, width: int = 18, blocks: int = 4, modules: list[int] | None = None,
                stem_blocks: int = 4, coordconv: bool = False, stem_channels: int = 64,
                visibility: bool = False, offsets: bool = False, boundaries: bool = False,
                attention: str = "boundary") -> HRNet:
    curves = len(scheme(spec.scheme).boundaries) if boundaries else 0
    if boundaries and not curves:
        raise ValueError(f"boundaries: scheme {spec.scheme} defines no boundary curves")
    return HRNet(spec.n_points, width, blocks, tuple(modules or (1, 4, 3)), stem_blocks, coordconv, stem_channels,
                 visibility, offsets, curves, attention)
