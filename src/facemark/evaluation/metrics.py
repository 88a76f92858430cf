"""Accuracy metrics: NME with an explicit normalisation, failure rate, CED curve, AUC.

All values are fractions (0.045 means 4.5%). NME of one face is the mean point-to-point Euclidean error
divided by the normaliser d:
- ``iod``: distance between the outer eye corners (300W's standard),
- ``ipd``: distance between the pupils (eye-point means where the scheme has no pupil points),
- ``box``: sqrt(w * h) of the ground-truth box (the landmarks' bounding box when no box is given),
- ``diag``: diagonal of that box.
Shapes are (M, N, D): normalisers use the image plane (x, y); the point error uses every coordinate given, so
3D points give a 3D error. The scheme comes from the point count unless named.
"""
from __future__ import annotations

import numpy as np

from ..core import schemes
from ..core.errors import ArgumentError
from ..core.points import xy
from ..core.uncertainty import spearman

NORMS = ("iod", "ipd", "box", "diag")


def _boxes_of(gt: np.ndarray, boxes: np.ndarray | None) -> np.ndarray:
    if boxes is not None:
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([gt.min(axis=1), gt.max(axis=1)], axis=1)


def normaliser(gt: np.ndarray, norm: str, boxes: np.ndarray | None = None,
               scheme: str | None = None) -> np.ndarray:
    """(M,) normalising distances of (M, N, D) ground-truth shapes."""
    gt = xy(np.asarray(gt, dtype=np.float64))
    if norm in ("iod", "ipd"):
        layout = schemes.scheme(scheme) if scheme else schemes.scheme_for_points(gt.shape[1])
        if norm == "iod":
            a, b = layout.outer_eyes
            return np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
        pupils = layout.pupil_points(gt)
        return np.linalg.norm(pupils[:, 0] - pupils[:, 1], axis=-1)
    if norm in ("box", "diag"):
        b = _boxes_of(gt, boxes)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return np.sqrt(w * h) if norm == "box" else np.hypot(w, h)
    raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")


def nme(pred: np.ndarray, gt: np.ndarray, norm: str, boxes: np.ndarray | None = None,
        scheme: str | None = None) -> np.ndarray:
    """Per-face NME (M,) of (M, N, D) or (N, D) predictions; ``norm`` is required: one of NORMS. An image-plane
    metric: x and y are compared, a z of either side is left out."""
    pred = np.asarray(pred, dtype=np.float64)[..., :2]
    gt = np.asarray(gt, dtype=np.float64)[..., :2]
    for name, a in (("pred", pred), ("gt", gt)):
        if not np.isfinite(a).all():
            raise ArgumentError(name, "points contain NaN or infinity")
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth shape {gt.shape}")
    d = normaliser(gt, norm, boxes, scheme)
    if np.any(d <= 0):
        raise ValueError(f"normalising distance ({norm}) is zero for some face")
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1) / d


def failure_rate(errors: np.ndarray, threshold: float = 0.1) -> float:
    """Fraction of faces whose NME is above ``threshold``."""
    return float(np.mean(np.asarray(errors) > threshold))


def ced(errors: np.ndarray, threshold: float = 0.1, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: (x, fraction of faces with NME <= x) for x in [0, threshold]."""
    x = np.linspace(0.0, threshold, steps)
    e = np.sort(np.asarray(errors, dtype=np.float64))
    return x, np.searchsorted(e, x, side="right") / len(e)


def auc(errors: np.ndarray, threshold: float = 0.1) -> float:
    """Area under the CED from 0 to ``threshold``, divided by ``threshold`` (1.0 = every face perfect).

    Computed exactly: the CED is a step function, so the area is the mean of (threshold - e) over faces
    with e < threshold.
    """
    e = np.asarray(errors, dtype=np.float64)
    return float(np.clip(threshold - e, 0.0, None).sum() / (len(e) * threshold))


def summary(errors: np.ndarray, norm: str, threshold: float = 0.1) -> dict[str, float | int | str]:
    """The standard report: n, mean NME, FR and AUC at ``threshold`` (fractions)."""
    e = np.asarray(errors, dtype=np.float64)
    return {"n": int(len(e)), "nme": float(e.mean()), "fr": failure_rate(e, threshold),
            "auc": auc(e, threshold), "norm": norm, "threshold": threshold}


def uncertainty_report(expected: np.ndarray, pred: np.ndarray, gt: np.ndarray, norm: np.ndarray) -> dict:
    """How well predicted uncertainty tells good fits from bad: ``expected`` (M, N) expected point errors and the
    (M, N, D) predictions against (M, N, D) ground truth, in the same pixels, faces normalised by ``norm`` (M,).

    ``calibration``: mean actual point error over mean expected (1 is calibrated); ``spearman``: rank
    correlation of each face's expected NME (mean expected error over its norm) with its actual NME;
    ``reject``: the NME of the most certain 100/90/80/70% of faces (the error-reject curve).
    """
    actual = np.linalg.norm(np.asarray(pred)[..., :2] - np.asarray(gt)[..., :2], axis=-1)
    face_nme = actual.mean(axis=1) / norm
    face_expected = np.asarray(expected).mean(axis=1) / norm
    order = np.argsort(face_expected, kind="stable")
    keep = {f: float(face_nme[order[:max(1, int(round(len(order) * f / 100)))]].mean()) for f in (100, 90, 80, 70)}
    return {"faces": len(face_nme), "calibration": float(actual.mean() / np.asarray(expected).mean()),
            "spearman": spearman(face_expected, face_nme), "reject": keep}
