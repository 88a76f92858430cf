"""The landmark array convention: (..., N, D) float arrays, D = 2 (x, y) or 3 (x, y, z).

x and y are 0-based pixel centres of the image (or crop) the points belong to; z, where present, is depth in
the same pixel scale. Geometry that works in the image plane (crops, flips, normalisers, 2D metrics) reads
x and y and carries z along, so 2D and 3D landmarks flow through the same code.
"""
from __future__ import annotations

import numpy as np

from .errors import ArgumentError

DIMS = (2, 3)


def xy(pts: np.ndarray) -> np.ndarray:
    """The image-plane part (..., N, 2) of (..., N, D) points."""
    return np.asarray(pts)[..., :2]


def check_dim(dim: int) -> int:
    """``dim`` if it is a supported point dimension, else a ValueError."""
    if dim not in DIMS:
        raise ValueError(f"points have 2 (x, y) or 3 (x, y, z) coordinates, not {dim}")
    return dim


def check_points(pts, argument: str, n: int | None = None) -> np.ndarray:
    """``pts`` as an (..., N, D) float64 array of finite points that are not all the same point (N = ``n`` when
    given), or an ArgumentError naming ``argument``."""
    try:
        arr = np.asarray(pts, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(argument, "not an array of numbers") from None
    if arr.ndim < 2 or arr.shape[-1] not in DIMS or (n is not None and arr.shape[-2] != n):
        want = f"({n if n is not None else 'N'}, 2) or ({n if n is not None else 'N'}, 3)"
        raise ArgumentError(argument, f"expected points of shape {want}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ArgumentError(argument, "points contain NaN or infinity")
    if arr.shape[-2] > 1 and (np.ptp(arr[..., :2], axis=-2).max(axis=-1) == 0).any():
        raise ArgumentError(argument, "all points are the same point")
    return arr


def check_boxes(boxes, argument: str) -> np.ndarray:
    """``boxes`` as a (K, 4) float64 array of finite boxes (x1, y1, x2, y2) with x2 > x1 and y2 > y1."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(argument, "not an array of numbers") from None
    if arr.size % 4 or (arr.ndim == 2 and arr.shape[1] != 4) or arr.ndim > 2:
        raise ArgumentError(argument, f"expected boxes (x1, y1, x2, y2) of shape (K, 4), got shape {arr.shape}")
    arr = arr.reshape(-1, 4)
    if not np.isfinite(arr).all():
        raise ArgumentError(argument, "boxes contain NaN or infinity")
    if ((arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])).any():
        raise ArgumentError(argument, "a box has no area (x2 <= x1 or y2 <= y1)")
    return arr
