"""The landmark array convention: (..., N, D) float arrays, D = 2 (x, y) or 3 (x, y, z).

x and y are 0-based pixel centres of the image (or crop) the points belong to; z, where present, is depth in
the same pixel scale. Geometry that works in the image plane (crops, flips, normalisers, 2D metrics) reads
x and y and carries z along, so 2D and 3D landmarks flow through the same code.
"""
from __future__ import annotations

import numpy as np

DIMS = (2, 3)


def xy(pts: np.ndarray) -> np.ndarray:
    """The image-plane part (..., N, 2) of (..., N, D) points."""
    return np.asarray(pts)[..., :2]


def check_dim(dim: int) -> int:
    """``dim`` if it is a supported point dimension, else a ValueError."""
    if dim not in DIMS:
        raise ValueError(f"points have 2 (x, y) or 3 (x, y, z) coordinates, not {dim}")
    return dim
