"""SPIGA (Prados-Torreblanca et al. 2022): a heatmap backbone, then a cascade of graph-attention regressors
that move all points together from a shape-preserving start.

- **Backbone**: HRNet (``hrnet.py``) trained on point heatmaps as usual (multi-task: its features also feed
  the steps below).
- **Start**: a pose head reads the pooled features and gives yaw, pitch, roll, a shift and a log-scale; the
  3D mean face of ``core.shape3d`` turned and projected by them is the first estimate (a rigid face: the
  shape is kept, only the pose is guessed).
- **Steps**: each of ``steps`` regressors samples a ``window`` x ``window`` patch of the backbone's features
  around every current point (bilinear), adds a positional encoding of the point's displacements to all
  the others, lets the points attend to each other (a graph attention over the fully connected face:
  ``layers`` transformer layers), and moves each point by what it concludes.

``forward`` returns the last step's (B, 2N) coordinates as fractions of the crop (``RegressionCodec``);
``forward_train`` also every step's (``steps``, the start first) and the backbone's ``heatmaps``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.shape3d import shape_model
from .base import MODELS, LandmarkNet
from .hrnet import HRNet


def rotation(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) yaw, pitch, roll in radians -> (B, 3, 3) rotation R = Rz(roll) Ry(yaw) Rx(pitch) (x right, y
    down, z away from the camera, as ``core.shape3d``)."""
    yaw, pitch, roll = angles.unbind(dim=1)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)

    def mat(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(r, dim=1) for r in rows], dim=1)

    rx = mat([[one, zero, zero], [zero, pitch.cos(), -pitch.sin()], [zero, pitch.sin(), pitch.cos()]])
    ry = mat([[yaw.cos(), zero, yaw.sin()], [zero, one, zero], [-yaw.sin(), zero, yaw.cos()]])
    rz = mat([[roll.cos(), -roll.sin(), zero], [roll.sin(), roll.cos(), zero], [zero, zero, one]])
    return rz @ ry @ rx


class PoseStart(nn.Module):
    """Pooled features -> pose -> the projected 3D mean face, (B, N, 2) crop fractions. ``centre`` and
    ``size`` place the frontal mean face on the mean training face (``fit_template``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Linear(channels, 64), nn.ReLU(inplace=True), nn.Linear(64, 6))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        mean = torch.from_numpy(shape_model().mean).float()
        self.register_buffer("mean", mean - mean.mean(dim=0))
        self.register_buffer("centre", torch.full((2,), 0.5))
        self.register_buffer("size", torch.ones(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        p = self.head(features.mean(dim=(2, 3)))
        turned = torch.einsum("bij,nj->bni", rotation(p[:, :3]), self.mean)[..., :2]
        return self.centre + p[:, None, 3:5] + self.size * torch.exp(p[:, 5])[:, None, None] * turned

    @torch.no_grad()
    def fit_template(self, mean_face: torch.Tensor) -> None:
        """Scale and centre the frontal mean face onto a (N, 2) mean training face in crop fractions (least
        squares), so the pose head starts from the average face."""
        flat = self.mean[:, :2]
        centre = mean_face.mean(dim=0)
        self.centre.copy_(centre)
        self.size.copy_(((mean_face - centre) * flat).sum() / (flat * flat).sum())


class GraphStep(nn.Module):
    """One cascade step: per point a feature patch and a positional encoding, attention between the points
    (``layers`` pre-norm transformer layers of ``heads`` heads), then a move."""

    def __init__(self, channels: int, n_points: int, cells: int, dim: int = 64, heads: int = 4, layers: int = 1,
                 window: int = 3) -> None:
        super().__init__()
        self.cells, self.window = cells, window
        self.visual = nn.Linear(channels * window * window, dim)
        self.position = nn.Linear(2 * n_points, dim)
        self.layers = nn.ModuleList(AttentionLayer(dim, heads) for _ in range(layers))
        self.move = nn.Linear(dim, 2)
        nn.init.zeros_(self.move.weight)
        nn.init.zeros_(self.move.bias)

    def forward(self, features: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
        b, n, _ = pts.shape
        k = torch.arange(self.window, device=pts.device, dtype=pts.dtype) - (self.window - 1) / 2
        grid_offsets = torch.stack(torch.meshgrid(k, k, indexing="xy"), dim=-1).view(1, 1, -1, 2) / self.cells
        grid = (pts[:, :, None] + grid_offsets) * 2 - 1                                # (B, N, w*w, 2)
        patch = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        h = self.visual(patch.permute(0, 2, 1, 3).reshape(b, n, -1))                    # (B, N, dim)
        h = h + self.position((pts[:, None] - pts[:, :, None]).reshape(b, n, 2 * n))
        for layer in self.layers:
            h = layer(h)
        return pts + self.move(h) / self.cells * 4      # a move of 4 cells at unit output


class AttentionLayer(nn.Module):
    """A pre-norm transformer layer (multi-head self-attention, then a 2x MLP), written out so that it
    exports to ONNX as plain matrix products."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(inplace=True), nn.Linear(2 * dim, dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        h = h + self.out((att @ v).transpose(1, 2).reshape(b, n, d))
        return h + self.mlp(self.norm2(h))


class SPIGA(LandmarkNet):
    """HRNet backbone + pose start + ``steps`` graph-attention steps (see the module's docstring)."""

    def __init__(self, backbone: HRNet, channels: int, n_points: int, cells: int, steps: int = 3,
                 dim: int = 64, heads: int = 4, layers: int = 1, window: int = 3) -> None:
        super().__init__()
        self.backbone = backbone
        self.start = PoseStart(channels)
        self.steps = nn.ModuleList(GraphStep(channels, n_points, cells, dim, heads, layers, window)
                                   for _ in range(steps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)["out"]

    def forward_train(self, x: torch.Tensor) -> dict:
        b = self.backbone
        features = b.head[0](b._features(b.stem(x)))
        pts = self.start(features)
        steps = [pts]
        for step in self.steps:
            pts = step(features, pts)
            steps.append(pts)
        return {"out": pts.flatten(1), "steps": [s.flatten(1) for s in steps], "heatmaps": b.head[1](features)}

    @torch.no_grad()
    def init_output_bias(self, mean_output: torch.Tensor) -> None:
        """Start from the mean training face (the regression codec's encoding, (2N,)): the pose start's
        template is fitted to it."""
        self.start.fit_template(mean_output.view(-1, 2))


@MODELS.register("spiga")
def build_spiga(spec, width: int = 8, blocks: int = 2, modules: list[int] | None = None, stem_blocks: int = 1,
                stem_channels: int = 16, steps: int = 3, dim: int = 64, heads: int = 4, layers: int = 1,
                window: int = 3) -> SPIGA:
    backbone = HRNet(spec.n_points, width, blocks, tuple(modules or (1, 1, 1)), stem_blocks,
                     stem_channels=stem_channels)
    channels = sum(width * 2 ** k for k in range(len(modules or (1, 1, 1)) + 1))
    stride = int(spec.codec.get("stride", 4))
    return SPIGA(backbone, channels, spec.n_points, spec.input_size // stride, steps, dim, heads, layers, window)
