"""Boundary-aware refinement of a heatmap head: PropagationNet (Huang et al. 2020) and ADNet's anisotropic
attention (Huang et al. 2021), both after LAB (Wu et al. 2018), which showed that facial boundary heatmaps
help place the points.

A first head's point heatmaps are *propagated* to boundary heatmaps (one per curve of the scheme: the jaw,
brows, nose, eyelids, lips; ``core.boundaries``) by a few convolutions, which PropagationNet uses instead of
LAB's separately trained, GAN-refined boundary estimator. The boundary maps then make an attention mask over
the head's features, and a second head predicts the final point heatmaps from the re-weighted features.
``attention``: ``boundary`` builds the mask from the boundary maps (PropagationNet); ``anisotropic`` from
boundary and point maps together (ADNet's anisotropic attention module: each point's region joined with its
stretch of edge, so the mask extends along the curve more than across it).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .layers import conv_bn

ATTENTION = ("boundary", "anisotropic")


class BoundaryRefiner(nn.Module):
    """Point heatmaps -> ``n_boundaries`` boundary heatmaps -> attention on ``channels`` features -> final point
    heatmaps. ``hidden``: the width of the propagation and attention convolutions (small: they run at the
    heatmaps' resolution)."""

    def __init__(self, channels: int, n_points: int, n_boundaries: int, attention: str = "boundary",
                 hidden: int = 16) -> None:
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(f"attention {attention!r}: one of {', '.join(ATTENTION)}")
        self.anisotropic = attention == "anisotropic"
        self.propagate = nn.Sequential(
            conv_bn(n_points, hidden, 3),
            nn.Conv2d(hidden, hidden, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True), nn.Conv2d(hidden, n_boundaries, 1))
        self.attend = nn.Sequential(conv_bn(n_boundaries + n_points * self.anisotropic, hidden, 3),
                                    nn.Conv2d(hidden, channels, 1))
        self.head = nn.Conv2d(channels, n_points, 1)

    def forward(self, features: torch.Tensor, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(boundary heatmaps, refined point heatmaps); the mask re-weights the features as 1 + sigmoid (a
        residual attention: where it is 0, the features pass unchanged)."""
        boundary = self.propagate(heatmaps)
        cue = torch.cat([boundary, heatmaps], dim=1) if self.anisotropic else boundary
        mask = torch.sigmoid(self.attend(cue))
        return boundary, self.head(features * (1.0 + mask))
