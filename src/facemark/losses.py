"""Landmark losses. Each maps (B, N, 2) predictions and targets to a per-sample loss (B,), so that
sample weights (PFLD) can be applied before averaging.

``scale`` multiplies coordinates first: regression targets are fractions of the crop, while Wing's
w and epsilon are defined in pixels, so configs set ``scale`` to the input size.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .registry import Registry

LOSSES: Registry = Registry("loss")


class PointLoss(nn.Module):
    """Base: element-wise penalty on coordinate differences, summed over points and axes."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def penalty(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = (pred.float() - target.float()) * self.scale
        return self.penalty(diff).flatten(1).sum(dim=1)


@LOSSES.register("l1")
class L1Loss(PointLoss):
    def penalty(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


@LOSSES.register("l2")
class L2Loss(PointLoss):
    """Squared Euclidean distance per point (PFLD's base loss)."""

    def penalty(self, diff: torch.Tensor) -> torch.Tensor:
        return diff * diff


@LOSSES.register("smooth_l1")
class SmoothL1Loss(PointLoss):
    """0.5 x^2 / beta for |x| < beta, |x| - 0.5 beta beyond."""

    def __init__(self, beta: float = 1.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.beta = beta

    def penalty(self, diff: torch.Tensor) -> torch.Tensor:
        a = diff.abs()
        return torch.where(a < self.beta, 0.5 * a * a / self.beta, a - 0.5 * self.beta)


@LOSSES.register("wing")
class WingLoss(PointLoss):
    """Wing loss (Feng et al. 2018): w ln(1 + |x|/eps) for |x| < w, |x| - C beyond, C = w - w ln(1 + w/eps)."""

    def __init__(self, w: float = 10.0, epsilon: float = 2.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.w, self.epsilon = w, epsilon
        self.c = w - w * math.log(1.0 + w / epsilon)

    def penalty(self, diff: torch.Tensor) -> torch.Tensor:
        a = diff.abs()
        return torch.where(a < self.w, self.w * torch.log1p(a / self.epsilon), a - self.c)


def build_loss(cfg: dict) -> nn.Module:
    """Build a loss from a config mapping ``{name: ..., **kwargs}``."""
    cfg = dict(cfg)
    return LOSSES.build(cfg.pop("name"), **cfg)


def pfld_weights(pred_angles: torch.Tensor, gt_angles: torch.Tensor, class_weight: torch.Tensor,
                 floor: float = 0.0) -> torch.Tensor:
    """PFLD's per-sample weight: class weight x (floor + sum over yaw/pitch/roll of (1 - cos(angle error))).

    Angles in radians, (B, 3); class_weight (B,). Large pose errors and rare classes weigh more. ``floor = 0``
    is the paper's formula; there a face whose angles the auxiliary net already predicts well gets almost no
    landmark gradient, which slowed training here (docs/training.md), so configs may set a floor.
    """
    return class_weight * (floor + torch.sum(1.0 - torch.cos(pred_angles.float() - gt_angles.float()), dim=1))
