"""MTCNN's cascade arithmetic, shared by inference (``inference.detectors.MtcnnDetector``) and training (its
sampler and the mining of hard windows): windows, their crops, the box / point offsets the nets predict.

A window is a square (x1, y1, x2, y2) in integer pixels (``square``). A net's outputs for a window of side s:
box offsets ``(face box - window) / s`` per corner, points ``(point - window's top-left) / s``.
"""
from __future__ import annotations

import cv2
import numpy as np

PAD = 114                 # grey for the parts of a window outside the photo
SCALE_STEP = 0.709        # the image pyramid's factor between levels (area halves every two levels)


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) -> the integer squares (K, 4) of their longer side around their centres."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    x1 = np.round((boxes[:, 0] + boxes[:, 2]) / 2 - side / 2)
    y1 = np.round((boxes[:, 1] + boxes[:, 3]) / 2 - side / 2)
    side = np.maximum(1.0, np.round(side))
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def crop_window(image: np.ndarray, window: np.ndarray, size: int) -> np.ndarray:
    """The square integer ``window`` of an RGB image resized to ``size`` x ``size`` (grey outside the photo)."""
    x1, y1, x2, y2 = (int(v) for v in window)
    h, w = image.shape[:2]
    out = np.full((y2 - y1, x2 - x1, 3), PAD, np.uint8)
    sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if out.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(out, (size, size), interpolation=interp)


def apply_offsets(windows: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face boxes (K, 4) and 5 points (K, 5, 2) from windows (K, 4) and their (K, 15) net outputs."""
    side = (windows[:, 2] - windows[:, 0])[:, None]
    boxes = windows + out[:, 1:5] * side
    points = windows[:, None, :2] + out[:, 5:15].reshape(-1, 5, 2) * side[:, :, None]
    return boxes, points


def offsets(window: np.ndarray, box: np.ndarray, points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training targets of one window: box offsets (4,) and point offsets (10,) (NaN where ``points`` is None)."""
    side = window[2] - window[0]
    pts = (np.full(10, np.nan) if points is None
           else ((np.asarray(points, dtype=np.float64) - window[:2]) / side).reshape(10))
    return (np.asarray(box, dtype=np.float64) - window) / side, pts


def pyramid(height: int, width: int, min_face: float, cell: int = 12) -> list[float]:
    """Scales at which a ``cell``-pixel window sees faces from ``min_face`` pixels up to the whole image."""
    scales, s = [], cell / min_face
    while min(height, width) * s >= cell:
        scales.append(s)
        s *= SCALE_STEP
    return scales
