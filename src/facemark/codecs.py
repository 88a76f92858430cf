"""Codecs: each owns both directions of one output representation (encode targets, decode outputs).

Models never decode; everything here is numpy so inference needs no torch.
"""
from __future__ import annotations

import numpy as np

from .registry import Registry

CODECS: Registry = Registry("codec")


@CODECS.register("regression")
class RegressionCodec:
    """Direct coordinate regression: crop pixel coordinates <-> [0, 1] fractions of the crop side.

    A point at pixel centre p of a crop ``size`` wide encodes as (p + 0.5) / size, so 0 and 1 are the
    crop's outer edges.
    """

    def __init__(self, input_size: int, n_points: int) -> None:
        self.input_size = input_size
        self.n_points = n_points

    def encode(self, pts: np.ndarray) -> np.ndarray:
        """(..., N, 2) crop coordinates -> (..., 2N) float32 targets."""
        pts = np.asarray(pts, dtype=np.float32)
        flat = (pts + 0.5) / self.input_size
        return flat.reshape(*pts.shape[:-2], 2 * self.n_points)

    def decode(self, output: np.ndarray) -> np.ndarray:
        """(B, 2N) model outputs -> (B, N, 2) crop coordinates."""
        out = np.asarray(output, dtype=np.float64).reshape(-1, self.n_points, 2)
        return out * self.input_size - 0.5
