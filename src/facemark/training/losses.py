"""Landmark losses. Each maps a model's output and the codec's targets to a per-sample loss (B,), so that
sample weights (PFLD) can be applied before averaging.

``scale`` multiplies coordinates first: regression targets are fractions of the crop, while Wing's
w and epsilon are defined in pixels, so configs set ``scale`` to the input size.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.registry import Registry

LOSSES: Registry = Registry("loss")


class PointLoss(nn.Module):
    """Base: element-wise penalty on coordinate differences, summed over points and axes."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def penalty(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, 2N) or (B, N, 2) coordinates -> (B,) summed penalties."""
        diff = (pred.float() - target.float().view_as(pred)) * self.scale
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


@LOSSES.register("anchors")
class AnchorLoss(nn.Module):
    """AnchorFace: Wing (``w``, ``epsilon``, ``scale``) on the score-weighted mean of the refined anchors and on
    the nearest anchor's refinement, plus ``cls_weight`` times the cross-entropy of the scores against the
    nearest anchor (``AnchorCodec``'s targets)."""

    def __init__(self, cls_weight: float = 1.0, w: float = 10.0, epsilon: float = 2.0, scale: float = 1.0) -> None:
        super().__init__()
        self.wing = WingLoss(w, epsilon, scale)
        self.cls_weight = cls_weight

    def forward(self, pred: torch.Tensor, target: dict[str, torch.Tensor], anchors: torch.Tensor) -> torch.Tensor:
        """(B, K*(M+1)) outputs, ``target`` / ``anchor`` targets and the (K, M) encoded anchors -> (B,)."""
        k, m = anchors.shape
        b = pred.shape[0]
        refined = anchors.to(pred.device)[None] + pred[:, :k * m].float().view(b, k, m)
        logits = pred[:, k * m:].float()
        mean = (torch.softmax(logits, dim=1)[..., None] * refined).sum(dim=1)
        nearest = target["anchor"].long()
        best = refined[torch.arange(b, device=pred.device), nearest]
        ce = F.cross_entropy(logits, nearest, reduction="none")
        return self.wing(mean, target["target"]) + self.wing(best, target["target"]) + self.cls_weight * ce


@LOSSES.register("cascade")
class CascadeLoss(nn.Module):
    """A cascade (SPIGA on a heatmap backbone, DCNN): Wing (``w``, ``epsilon``, ``scale``) on every step's points,
    the start included, plus ``heatmap_weight`` times Adaptive Wing (its default settings) on the backbone's
    maps where the model has them."""

    def __init__(self, heatmap_weight: float = 1.0, w: float = 10.0, epsilon: float = 2.0, scale: float = 1.0) -> None:
        super().__init__()
        self.wing, self.maps = WingLoss(w, epsilon, scale), AdaptiveWingLoss()
        self.heatmap_weight = heatmap_weight

    def forward(self, steps: list[torch.Tensor], heatmaps: torch.Tensor | None,
                target: dict[str, torch.Tensor]) -> torch.Tensor:
        points = sum(self.wing(s, target["target"]) for s in steps)
        if heatmaps is None:
            return points
        return points + self.heatmap_weight * self.maps(heatmaps, target["heatmap"])


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


def visibility_loss(logits: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(B,) per-sample binary cross-entropy of (B, N) visibility logits against 0/1 labels, the mean over points:
    -mean_n [v log sigmoid(l) + (1 - v) log(1 - sigmoid(l))] (LUVLi's visibility term)."""
    return F.binary_cross_entropy_with_logits(logits.float(), visible.float(), reduction="none").mean(dim=1)


def local_soft_argmax(maps: torch.Tensor, window: int = 5, tau: float = 10.0) -> torch.Tensor:
    """(B, N, H, W) heatmaps -> (B, N, 2) positions in cells: the heatmap codec's ``soft_argmax`` decoder in
    torch, differentiable in the maps (the argmax cell is chosen without gradient, the softmax-weighted mean
    of the window around it carries it)."""
    b, n, h, w = maps.shape
    flat = maps.detach().flatten(2).argmax(dim=2)
    iy, ix = flat // w, flat % w
    d = torch.arange(-(window // 2), window // 2 + 1, device=maps.device)
    rows, cols = iy[..., None] + d, ix[..., None] + d                                   # (B, N, k)
    at = rows.clamp(0, h - 1)[..., :, None] * w + cols.clamp(0, w - 1)[..., None, :]    # (B, N, k, k)
    patch = maps.float().flatten(2).gather(2, at.flatten(2)).view_as(at.float())
    inside = ((rows >= 0) & (rows < h))[..., :, None] & ((cols >= 0) & (cols < w))[..., None, :]
    weights = torch.softmax((tau * patch).masked_fill(~inside, float("-inf")).flatten(2), dim=2).view_as(patch)
    dx = (weights * d.view(1, 1, 1, -1)).sum(dim=(2, 3))
    dy = (weights * d.view(1, 1, -1, 1)).sum(dim=(2, 3))
    return torch.stack([ix + dx, iy + dy], dim=-1)


def direction_loss(pred: torch.Tensor, target: torch.Tensor, tangent: torch.Tensor,
                   tangent_weight: float = 0.5) -> torch.Tensor:
    """ADNet's anisotropic direction loss: (B,) mean over points of |e . normal| + ``tangent_weight`` |e . tangent|
    for the error e = pred - target of (B, N, 2) points and (B, N, 2) unit tangents of their boundaries (a
    point on no curve, zero tangent, has no normal either and counts |e| whole)."""
    e = pred.float() - target.float()
    t = tangent.float()
    along = (e * t).sum(dim=-1)
    across = e[..., 1] * t[..., 0] - e[..., 0] * t[..., 1]      # e . (-t_y, t_x)
    free = (t.abs().sum(dim=-1) == 0).float()
    per_point = across.abs() + tangent_weight * along.abs() + free * e.norm(dim=-1)
    return per_point.mean(dim=1)


# --- heatmap losses: (B, N, H, W) maps, or a list of them (one per stack: intermediate supervision) ---------

class MapLoss(nn.Module):
    """Base of heatmap losses: per-sample mean over maps, summed over stacks when given a list."""

    def per_pixel(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor | list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        preds = pred if isinstance(pred, (list, tuple)) else [pred]
        return sum(self.per_pixel(p.float(), target.float()).flatten(1).mean(dim=1) for p in preds)


@LOSSES.register("heatmap_mse")
class HeatmapMSE(MapLoss):
    """The seed's HeatmapLoss: mean squared error over all maps of a sample."""

    def per_pixel(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target) ** 2


@LOSSES.register("awing")
class AdaptiveWingLoss(MapLoss):
    """Adaptive Wing (Wang et al. 2019) with its weighted loss map.

    For error x = |y - y_hat| and exponent p = alpha - y: omega ln(1 + (x / eps)^p) below theta, A x - C
    above, with A = omega p (theta/eps)^(p-1) / (eps (1 + (theta/eps)^p)) and C = theta A - omega ln(1 +
    (theta/eps)^p), which make the two pieces meet with equal value and slope at theta. (The seed prints
    theta/omega inside A and C; only theta/eps gives that continuity, as in the paper.) Pixels where the
    3x3 grey dilation of the target is >= ``threshold`` weigh ``1 + weight``.
    """

    def __init__(self, omega: float = 14.0, theta: float = 0.5, alpha: float = 2.1, epsilon: float = 1.0,
                 weight: float = 10.0, threshold: float = 0.2) -> None:
        super().__init__()
        self.omega, self.theta, self.alpha, self.epsilon = omega, theta, alpha, epsilon
        self.weight, self.threshold = weight, threshold

    def raw(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss without the weight map."""
        x = (target - pred).abs()
        p = self.alpha - target
        r = self.theta / self.epsilon
        a = self.omega * p * r ** (p - 1) / (self.epsilon * (1 + r ** p))
        c = self.theta * a - self.omega * torch.log1p(r ** p)
        return torch.where(x < self.theta, self.omega * torch.log1p((x / self.epsilon) ** p), a * x - c)

    def per_pixel(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dilated = F.max_pool2d(target, 3, stride=1, padding=1)
        w = 1.0 + self.weight * (dilated >= self.threshold).float()
        return w * self.raw(pred, target)


@LOSSES.register("hih")
class HIHLoss(nn.Module):
    """HIH: Adaptive Wing (``awing``'s settings) on the integer heatmaps plus ``offset_weight`` times the L1 error
    of the decimal offsets, averaged over the cells where they train (``offset_mask``, per point)."""

    def __init__(self, offset_weight: float = 1.0, **awing: float) -> None:
        super().__init__()
        self.maps = AdaptiveWingLoss(**awing)
        self.offset_weight = offset_weight

    def forward(self, maps: torch.Tensor, offsets: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = target["offset_mask"].float()
        b, n = mask.shape[:2]
        err = (offsets.float() - target["offset"].float()).abs().view(b, n, 2, *mask.shape[2:]).sum(dim=2)
        per_point = (err * mask).flatten(2).sum(dim=2) / mask.flatten(2).sum(dim=2).clamp(min=1.0)
        return self.maps(maps, target["target"]) + self.offset_weight * per_point.mean(dim=1)


@LOSSES.register("pip")
class PIPLoss(nn.Module):
    """PIPNet: MSE on the score maps, plus L1 on the offset and neighbour-offset maps read at each point's
    ground-truth cell only; ``cls_weight`` : ``reg_weight`` balances them (10 : 1 as in PIPNet).

    With STC's ``coarse`` score maps (2x and 4x pooled) and a per-sample curriculum ``task``: task 1 trains
    only the 4x-coarse score map (MSE against the max-pooled target), task 2 adds the 2x-coarse one, and
    task 3 adds the full loss above.
    """

    def __init__(self, cls_weight: float = 10.0, reg_weight: float = 1.0) -> None:
        super().__init__()
        self.cls_weight, self.reg_weight = cls_weight, reg_weight

    def forward(self, pred: tuple[torch.Tensor, ...], target: dict[str, torch.Tensor],
                coarse: tuple[torch.Tensor, torch.Tensor] | None = None,
                task: torch.Tensor | None = None) -> torch.Tensor:
        full = self._full(pred, target)
        if coarse is None or task is None:
            return full
        t = target["score"].float()
        c2, c4 = (((c.float() - F.max_pool2d(t, k, ceil_mode=True)) ** 2).flatten(1).mean(dim=1)
                  for c, k in zip(coarse, (2, 4)))
        return (task == 3) * full + self.cls_weight * ((task >= 2) * c2 + c4)

    def _full(self, pred: tuple[torch.Tensor, ...], target: dict[str, torch.Tensor]) -> torch.Tensor:
        score, off_x, off_y, nb_x, nb_y = (p.float() for p in pred)
        b, n = score.shape[:2]
        cell = target["cell"].long()                                            # (B, N)
        cls = ((score - target["score"]) ** 2).flatten(1).mean(dim=1)

        def at_cell(m: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return m.flatten(2).gather(2, idx[..., None])[..., 0]

        reg = sum((at_cell(p, cell) - at_cell(target[k].float(), cell)).abs().mean(dim=1)
                  for p, k in ((off_x, "off_x"), (off_y, "off_y")))
        nb_cell = cell.repeat_interleave(nb_x.shape[1] // n, dim=1)
        reg = reg + sum((at_cell(p, nb_cell) - at_cell(target[k].float(), nb_cell)).abs().mean(dim=1)
                        for p, k in ((nb_x, "nb_x"), (nb_y, "nb_y")))
        return self.cls_weight * cls + self.reg_weight * reg
