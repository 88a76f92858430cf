"""PIPNet (Jin et al. 2021): a backbone's stride-32 (or 16) features, and 1x1 heads predicting per point a
score map, x/y offsets inside the cell and the offsets of its neighbours (see PIPCodec). The backbone is any
of ``backbones.BACKBONES``, run at the codec's stride.

For self-training with curriculum (STC), ``forward_train`` also applies the score head to the features
max-pooled 2x and 4x: the coarser, easier score maps of the curriculum's tasks 2 and 1, with no extra weights.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, LandmarkNet
from .backbones import BACKBONES


class PIPNet(LandmarkNet):
    def __init__(self, backbone: nn.Module, n_points: int, num_nb: int = 10) -> None:
        super().__init__()
        self.backbone = backbone
        c = backbone.out_channels
        self.score = nn.Conv2d(c, n_points, 1)
        self.off_x = nn.Conv2d(c, n_points, 1)
        self.off_y = nn.Conv2d(c, n_points, 1)
        self.nb_x = nn.Conv2d(c, n_points * num_nb, 1)
        self.nb_y = nn.Conv2d(c, n_points * num_nb, 1)
        for head in (self.score, self.off_x, self.off_y, self.nb_x, self.nb_y):
            nn.init.normal_(head.weight, std=0.001)
            nn.init.zeros_(head.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._heads(self.backbone(x))

    def _heads(self, f: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.score(f), self.off_x(f), self.off_y(f), self.nb_x(f), self.nb_y(f)

    def forward_train(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
        f = self.backbone(x)
        f2 = F.max_pool2d(f, 2, ceil_mode=True)
        f4 = F.max_pool2d(f2, 2, ceil_mode=True)
        return {"out": self._heads(f), "coarse": (self.score(f2), self.score(f4))}


@MODELS.register("pipnet")
def build_pipnet(spec, backbone: dict) -> PIPNet:
    """``backbone``: a BACKBONES name and its settings, e.g. ``{name: mobilenetv2, width: 0.5}``."""
    settings = {k: v for k, v in backbone.items() if k != "name"}
    net = BACKBONES.build(backbone["name"], output_stride=spec.codec.get("stride", 32), **settings)
    return PIPNet(net, spec.n_points, spec.codec.get("num_nb", 10))
