"""The detector's codec: face boxes and 5 points <-> per-cell targets of an anchor-free, multi-level head.

Cells: at each stride (8, 16, 32, and 4 for a model with the fine level) a grid over the input, cell centres at
((i + 0.5) * stride); the head's output lists the cells level by level (in the model's order of strides), row
by row. A face belongs to the levels whose size range holds its size
sqrt(w * h), and there to the cells whose centres lie within ``radius`` strides of its centre (and inside the
box; the nearest cell at least). A cell claimed by two faces keeps the smaller one. Box targets are the log of
the distances from the cell centre to the four sides, in strides; landmark targets are offsets from the cell
centre in strides. Scores decode through a sigmoid: a score is in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# face sizes (sqrt(w * h), input pixels) each level learns; the ranges overlap so a face near a boundary
# trains both neighbours; the finest level a model has learns every face below its range too
LEVEL_RANGES = {4: (0.0, 32.0), 8: (16.0, 64.0), 16: (32.0, 160.0), 32: (96.0, 1e9)}


def level_ranges(strides) -> dict[int, tuple[float, float]]:
    """The face sizes each of a model's ``strides`` learns (``LEVEL_RANGES``, the finest from 0)."""
    ranges = {int(s): LEVEL_RANGES[int(s)] for s in strides}
    finest = min(ranges)
    ranges[finest] = (0.0, ranges[finest][1])
    return ranges


@dataclass
class Cells:
    """Every cell of an input: centres (C, 2) and strides (C,)."""

    centres: np.ndarray
    strides: np.ndarray

    @property
    def levels(self) -> tuple[int, ...]:
        """The strides present, finest first."""
        return tuple(int(s) for s in np.unique(self.strides))


def cells(height: int, width: int, strides: tuple[int, ...] = (8, 16, 32)) -> Cells:
    """The cells of a ``height`` x ``width`` input (each a multiple of the largest stride), level by level in
    the order of ``strides``."""
    centres, sizes = [], []
    for s in strides:
        gy, gx = np.mgrid[0:-(-height // s), 0:-(-width // s)]
        centres.append(np.column_stack([gx.ravel(), gy.ravel()]) * s + s / 2.0)
        sizes.append(np.full(gx.size, float(s)))
    return Cells(np.concatenate(centres), np.concatenate(sizes))


@dataclass
class Targets:
    """Per-cell training targets: ``score`` (C,) 1 face / 0 background / -1 ignored, ``box`` (C, 4) log
    distances, ``points`` (C, 10) offsets, ``has_points`` (C,) bool, ``size`` (C,) the face's size (for loss
    normalisation)."""

    score: np.ndarray
    box: np.ndarray
    points: np.ndarray
    has_points: np.ndarray
    size: np.ndarray


def encode(grid: Cells, boxes: np.ndarray, points: np.ndarray | None, ignore: np.ndarray,
           radius: float = 1.5) -> Targets:
    """Targets for faces ``boxes`` (K, 4), their 5 points (K, 5, 2) (NaN where unknown, or None), ``ignore``
    (K,) bool: cells on an ignored face learn nothing (neither face nor background)."""
    n = len(grid.strides)
    score = np.zeros(n, np.float32)
    box = np.zeros((n, 4), np.float32)
    pts = np.zeros((n, 10), np.float32)
    has = np.zeros(n, bool)
    size = np.ones(n, np.float32)
    owner_size = np.full(n, np.inf)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))   # big first: small overwrite
    cx, cy = grid.centres[:, 0], grid.centres[:, 1]
    ranges = level_ranges(grid.levels)
    for k in order:
        x1, y1, x2, y2 = boxes[k]
        s = np.sqrt((x2 - x1) * (y2 - y1))
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
        near = (np.abs(cx - mx) <= radius * grid.strides) & (np.abs(cy - my) <= radius * grid.strides)
        level = np.zeros(n, bool)
        for stride, (lo, hi) in ranges.items():
            on = grid.strides == stride
            if lo <= s < hi:
                level |= on
                nearest = np.flatnonzero(on)[np.argmin(np.hypot(cx[on] - mx, cy[on] - my))]
                near[nearest], inside[nearest] = True, True
        claim = level & near & inside & (s < owner_size)
        if ignore[k]:
            score[inside & (score == 0)] = -1
            continue
        score[claim] = 1
        owner_size[claim] = s
        size[claim] = s
        st = grid.strides[claim]
        d = np.column_stack([cx[claim] - x1, cy[claim] - y1, x2 - cx[claim], y2 - cy[claim]])
        box[claim] = np.log(np.maximum(d, 1e-3) / st[:, None])
        if points is not None and np.isfinite(points[k]).all():
            off = (points[k][None] - grid.centres[claim][:, None]) / st[:, None, None]
            pts[claim] = off.reshape(-1, 10)
            has[claim] = True
        else:
            has[claim] = False
    return Targets(score, box, pts, has, size)


def decode(output: np.ndarray, grid: Cells, score_threshold: float = 0.5, nms_iou: float = 0.4,
           top_k: int = 750) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces from one image's (C, 15) head output: boxes (K, 4), scores (K,) in [0, 1], 5 points (K, 5, 2),
    in input pixels, best first, after non-maximum suppression."""
    logits = output[:, 0].astype(np.float64)
    keep = np.flatnonzero(logits > np.log(score_threshold / (1 - score_threshold)))
    if len(keep) > top_k:
        keep = keep[np.argsort(-logits[keep])[:top_k]]
    scores = 1.0 / (1.0 + np.exp(-logits[keep]))
    st = grid.strides[keep][:, None]
    c = grid.centres[keep]
    d = np.exp(np.clip(output[keep, 1:5].astype(np.float64), -10, 10)) * st
    boxes = np.column_stack([c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]])
    pts = output[keep, 5:15].astype(np.float64).reshape(-1, 5, 2) * st[:, :, None] + c[:, None]
    if not len(keep):
        return boxes.reshape(0, 4), scores, pts.reshape(0, 5, 2)
    chosen = nms(boxes, scores, score_threshold, nms_iou)
    return boxes[chosen], scores[chosen], pts[chosen]


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou: float) -> np.ndarray:
    """Indices of the boxes (K, 4) that non-maximum suppression keeps, best first."""
    if not len(boxes):
        return np.zeros(0, int)
    chosen = np.asarray(cv2.dnn.NMSBoxes(np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).tolist(),
                                         scores.tolist(), score_threshold, iou), dtype=int).reshape(-1)
    return chosen[np.argsort(-scores[chosen], kind="stable")]


def _area(x: np.ndarray) -> np.ndarray:
    return (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) intersection areas of float boxes (A, 4) and (B, 4)."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return w * h


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) intersection over union of boxes (A, 4) and (B, 4)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter = _intersection(a, b)
    return inter / np.maximum(_area(a)[:, None] + _area(b)[None, :] - inter, 1e-12)


def overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B): box a meets box b at IoU >= 0.3, or lies at least half inside it (a part of a face: an eye, a
    mouth). A box that overlaps no annotated face this way is one the annotations say nothing about."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return (iou(a, b) >= 0.3) | (_intersection(a, b) >= 0.5 * _area(a)[:, None])
