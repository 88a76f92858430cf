"""DCNN (Sun, Wang and Tang 2013): the first deep cascade for facial points, five of them, in three levels.

- **Level 1**, on the grey face at 39x39: F1 reads the whole face (all 5 points), EN1 its top 31 rows (eyes
  and nose), NM1 its bottom 31 rows (nose and mouth corners); each point is the mean of the networks that
  predict it. Each network: four convolutions (4x4, 3x3, 3x3, 2x2; 20, 40, 60, 80 channels) with max-pooling
  after the first three, then two fully connected layers.
- **Levels 2 and 3**: two small networks per point (ten per level) each read a 15x15 patch around the
  previous level's estimate, cut at its own size (a fraction ``patches`` of the crop side, larger at level 2,
  smaller at 3), and move the point within it; a point's move is the mean of its two networks'.

Activations are the paper's absolute value of tanh; its locally shared (untied) convolution weights are
plain convolutions here. The levels train together (every level's points supervised, ``steps``), each level
reading the previous one's estimates without gradient, where the paper trained each level apart on jittered
ground truth. ``forward`` returns the last level's (B, 10) coordinates as crop fractions (``RegressionCodec``
order: x, y per point); ``forward_train`` every level's (``steps``). Everything, the patch cuts included, is
one ONNX graph.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, LandmarkNet


class AbsTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x).abs()


def conv_stack(layers: list[tuple[int, int, bool]], fc: int, outputs: int, size: tuple[int, int]) -> nn.Sequential:
    """Convolutions (kernel, channels, pool after) from a 1-channel ``size`` (H, W) input, then fc -> outputs."""
    mods: list[nn.Module] = []
    c, (h, w) = 1, size
    for k, out, pool in layers:
        mods += [nn.Conv2d(c, out, k), AbsTanh()]
        c, h, w = out, h - k + 1, w - k + 1
        if pool:
            mods.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    return nn.Sequential(*mods, nn.Flatten(), nn.Linear(c * h * w, fc), AbsTanh(), nn.Linear(fc, outputs))


LEVEL1 = [(4, 20, True), (3, 40, True), (3, 60, True), (2, 80, False)]
PATCH = [(4, 20, True), (3, 40, True)]
# level 1's networks: the rows of the 39x39 face each reads and the points it predicts
PARTS = {"f1": (0, 39, (0, 1, 2, 3, 4)), "en1": (0, 31, (0, 1, 2)), "nm1": (8, 39, (2, 3, 4))}


class DCNN(LandmarkNet):
    """The three levels for 5 points; ``patches``: per refining level, the two patch half-sides as fractions
    of the crop side."""

    def __init__(self, patches: tuple[tuple[float, float], ...] = ((0.16, 0.18), (0.11, 0.12))) -> None:
        super().__init__()
        self.level1 = nn.ModuleDict({name: conv_stack(LEVEL1, 120 if name == "f1" else 100, 2 * len(pts),
                                                      (bottom - top, 39))
                                     for name, (top, bottom, pts) in PARTS.items()})
        self.patches = patches
        self.levels = nn.ModuleList(nn.ModuleList(conv_stack(PATCH, 60, 2, (15, 15)) for _ in range(10))
                                    for _ in patches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)["out"]

    def forward_train(self, x: torch.Tensor) -> dict:
        grey = x.mean(dim=1, keepdim=True)
        face = F.interpolate(grey, size=(39, 39), mode="bilinear", align_corners=False)
        votes: list[list[torch.Tensor]] = [[] for _ in range(5)]
        for name, (top, bottom, points) in PARTS.items():
            out = self.level1[name](face[:, :, top:bottom]).view(-1, len(points), 2)
            # a part's coordinates are fractions of its rows: back to fractions of the whole face
            out = torch.stack([out[..., 0], (out[..., 1] * (bottom - top) + top) / 39], dim=-1)
            for k, point in enumerate(points):
                votes[point].append(out[:, k])
        pts = torch.stack([torch.stack(v).mean(dim=0) for v in votes], dim=1)
        steps = [pts]
        for nets, sizes in zip(self.levels, self.patches):
            centre = pts.detach()
            moves = []
            for k, net in enumerate(nets):
                point, size = k // 2, sizes[k % 2]
                moves.append(net(self._patch(grey, centre[:, point], size)) * size)
            pts = centre + torch.stack(moves, dim=1).view(-1, 5, 2, 2).mean(dim=2)
            steps.append(pts)
        return {"out": pts.flatten(1), "steps": [s.flatten(1) for s in steps]}

    @staticmethod
    def _patch(grey: torch.Tensor, centre: torch.Tensor, half: float) -> torch.Tensor:
        """(B, 1, 15, 15) the grey crop sampled around (B, 2) centres (crop fractions), ``half`` the side's half."""
        t = torch.linspace(-half, half, 15, device=grey.device)
        gy, gx = torch.meshgrid(t, t, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1)[None] + centre[:, None, None]        # (B, 15, 15, 2)
        return F.grid_sample(grey, grid * 2 - 1, mode="bilinear", padding_mode="border", align_corners=False)

    @torch.no_grad()
    def init_output_bias(self, mean_output: torch.Tensor) -> None:
        """Level 1's networks start from the mean face (``mean_output``: the (10,) encoded mean training face)."""
        mean = mean_output.view(5, 2)
        for name, (top, bottom, pts) in PARTS.items():
            m = mean[list(pts)].clone()
            m[:, 1] = (m[:, 1] * 39 - top) / (bottom - top)
            last = self.level1[name][-1]
            last.bias.copy_(m.flatten())
            last.weight.mul_(0.1)


@MODELS.register("dcnn")
def build_dcnn(spec, patches: list[list[float]] | None = None) -> DCNN:
    if spec.n_points != 5 or spec.dim != 2:
        raise ValueError(f"DCNN predicts the 5 points of the five scheme, not {spec.n_points} points of dim {spec.dim}")
    return DCNN(tuple(tuple(p) for p in patches) if patches else ((0.16, 0.18), (0.11, 0.12)))
