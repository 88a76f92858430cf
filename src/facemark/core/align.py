"""Face alignment: a similarity warp (rotation, uniform scale, translation) of the 5 points onto a template.

The template is the widely used 112x112 five-point layout of face-recognition pipelines (eyes, nose tip,
mouth corners); other sizes scale it.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import ArgumentError
from .points import check_points, xy

TEMPLATE_112 = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
])


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) mapping src (K, 2) onto dst (K, 2); a 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    r = u @ sign @ vt
    var_s = (s ** 2).sum() / len(src)
    scale = np.trace(np.diag(sig) @ sign) / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def template(size: int = 112) -> np.ndarray:
    """The 5-point template for a ``size`` x ``size`` crop."""
    return TEMPLATE_112 * (size / 112.0)


def align_face(image: np.ndarray, five: np.ndarray, size: int = 112) -> np.ndarray:
    """The aligned ``size`` x ``size`` face crop of an RGB image, given its 5 points (5, D) (left eye, right
    eye, nose tip, left and right mouth corner: ``Face.five``)."""
    five = check_points(five, "five", 5)
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ArgumentError("size", f"an aligned crop is a whole number of at least 8 pixels, not {size!r}")
    image = np.asarray(image)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ArgumentError("image", f"not an image: array of shape {image.shape}")
    m = umeyama(xy(five), template(size))
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
