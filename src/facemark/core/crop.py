"""Face box -> model input crop, and back.

A crop is a square region (centre, side, optional rotation) of the image resampled to ``size`` x ``size``.
The same definition serves training (boxes from landmarks, jittered) and inference (boxes from a detector,
mapped to what the model was trained on), so both see the same framing.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

# The model input covers the landmarks' bounding square enlarged by this factor (PFLD's framing).
CROP_SCALE = 1.2


@dataclass(frozen=True)
class Crop:
    """A square crop: centre (x, y) and side in source pixels, rotation in degrees, output size in pixels."""

    cx: float
    cy: float
    side: float
    size: int
    angle: float = 0.0

    def matrix(self) -> np.ndarray:
        """2x3 affine map from source pixel centres to crop pixel centres."""
        return self._matrix.copy()

    @cached_property
    def _matrix(self) -> np.ndarray:
        s = self.size / self.side
        a = np.deg2rad(self.angle)
        r = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) * s
        half = (self.size - 1) / 2.0
        t = np.array([half, half]) - r @ np.array([self.cx, self.cy])
        return np.hstack([r, t[:, None]])

    @cached_property
    def _inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self._matrix)

    def warp(self, image: np.ndarray, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
        """Resample ``image`` into the crop (bilinear; area-like when shrinking a lot)."""
        m = self._matrix
        shrink = self.side / self.size
        if shrink > 2.0:  # pre-blur to avoid aliasing when the face is much larger than the crop
            k = int(shrink) | 1
            # only the part of the image the crop reads, with the kernel's reach around it: a face in a large
            # photo costs its own pixels, not the whole photo's
            x0, y0, x1, y1 = self._source_box(image.shape, pad=k // 2 + 2)
            if x1 <= x0 or y1 <= y0:
                return np.zeros((self.size, self.size) + image.shape[2:], image.dtype)
            image = cv2.GaussianBlur(image[y0:y1, x0:x1], (k, k), shrink / 3)
            m = m + np.array([[0.0, 0.0, m[0, 0] * x0 + m[0, 1] * y0], [0.0, 0.0, m[1, 0] * x0 + m[1, 1] * y0]])
        return cv2.warpAffine(image, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=border)

    def _source_box(self, shape: tuple[int, ...], pad: int) -> tuple[int, int, int, int]:
        """The integer source region (x0, y0, x1, y1) the crop samples, widened by ``pad``, within the image."""
        corners = self.to_source(np.array([[0, 0], [self.size - 1, 0], [0, self.size - 1],
                                           [self.size - 1, self.size - 1]], dtype=np.float64))
        lo = np.floor(corners.min(axis=0)).astype(int) - pad
        hi = np.ceil(corners.max(axis=0)).astype(int) + pad + 1
        h, w = shape[:2]
        return max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)

    def to_crop(self, pts: np.ndarray) -> np.ndarray:
        """Source points (..., D) -> crop points (z, if any, scales with the crop)."""
        return apply_affine(self._matrix, pts)

    def to_source(self, pts: np.ndarray) -> np.ndarray:
        """Crop points (..., D) -> source points."""
        return apply_affine(self._inverse, pts)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 similarity matrix to points (..., 2), or (..., 3) whose z scales by the matrix's scale."""
    pts = np.asarray(pts, dtype=np.float64)
    out = pts[..., :2] @ m[:, :2].T + m[:, 2]
    if pts.shape[-1] == 2:
        return out
    scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
    return np.concatenate([out, pts[..., 2:] * scale], axis=-1)


def to_input(crops: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) RGB uint8 crops -> (B, 3, H, W) float32 in [-1, 1], the input every model takes."""
    x = np.asarray(crops, dtype=np.float32).transpose(0, 3, 1, 2)
    return (x - 127.5) / 127.5


def landmark_box(pts: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) bounding box of (N, D) landmarks in the image plane."""
    pts = np.asarray(pts, dtype=np.float64)[:, :2]
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def crop_from_box(box: np.ndarray, size: int, scale: float = CROP_SCALE, angle: float = 0.0) -> Crop:
    """The square crop around a landmark-style box: its centre, side = longer edge x ``scale``, turned by
    ``angle`` degrees (``Crop.angle``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return Crop((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1, 1.0) * scale, size, float(angle))


def crop_from_landmarks(pts: np.ndarray, size: int, scale: float = CROP_SCALE, angle: float = 0.0) -> Crop:
    """The crop the models are trained on: the (N, D) landmarks' box, squared and enlarged by ``scale``; with
    ``angle``, the box is taken in the frame turned by it and the crop turned with it (an upright face)."""
    if not angle:
        return crop_from_box(landmark_box(pts), size, scale)
    a = np.deg2rad(angle)
    r = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])   # image -> upright frame (Crop.matrix's)
    x1, y1, x2, y2 = landmark_box(np.asarray(pts, dtype=np.float64)[:, :2] @ r.T)
    centre = r.T @ np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    return Crop(float(centre[0]), float(centre[1]), max(x2 - x1, y2 - y1, 1.0) * scale, size, float(angle))


def roll_angle(five: np.ndarray) -> float:
    """The crop angle (degrees, ``Crop.angle``) that turns a face upright, from its 5 points (the eyes as the
    viewer sees them when the face is upright: left, right)."""
    e = np.asarray(five, dtype=np.float64)[1, :2] - np.asarray(five, dtype=np.float64)[0, :2]
    return float(np.degrees(np.arctan2(e[1], e[0])))
