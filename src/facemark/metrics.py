"""Accuracy metrics: NME with an explicit normalisation, failure rate, CED curve, AUC, CED plots.

All values are fractions (0.045 means 4.5%). NME of one face is the mean point-to-point Euclidean error
divided by the normaliser d:
- ``iod``: distance between the outer eye corners (300W's standard),
- ``ipd``: distance between the pupils (eye-point means where the scheme has no pupil points),
- ``box``: sqrt(w * h) of the ground-truth box (the landmarks' bounding box when no box is given),
- ``diag``: diagonal of that box.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .images import atomic_write_bytes
from .schemes import scheme

NORMS = ("iod", "ipd", "box", "diag")


def _boxes_of(gt: np.ndarray, boxes: np.ndarray | None) -> np.ndarray:
    if boxes is not None:
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([gt.min(axis=1), gt.max(axis=1)], axis=1)


def normaliser(gt: np.ndarray, norm: str, boxes: np.ndarray | None = None) -> np.ndarray:
    """(M,) normalising distances of (M, N, 2) ground-truth shapes."""
    gt = np.asarray(gt, dtype=np.float64)
    if norm == "iod":
        a, b = scheme(gt.shape[1]).outer_eyes
        return np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
    if norm == "ipd":
        pupils = scheme(gt.shape[1]).pupil_points(gt)
        return np.linalg.norm(pupils[:, 0] - pupils[:, 1], axis=-1)
    if norm in ("box", "diag"):
        b = _boxes_of(gt, boxes)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return np.sqrt(w * h) if norm == "box" else np.hypot(w, h)
    raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")


def nme(pred: np.ndarray, gt: np.ndarray, norm: str, boxes: np.ndarray | None = None) -> np.ndarray:
    """Per-face NME (M,) of (M, N, 2) or (N, 2) predictions; ``norm`` is required: one of NORMS."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth shape {gt.shape}")
    d = normaliser(gt, norm, boxes)
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


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, threshold: float = 0.1,
             title: str = "Cumulative error distribution", norm: str | None = None) -> None:
    """Write a PNG with one CED curve per entry of ``curves`` (label -> per-face NME)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    colours = plt.get_cmap("tab10").colors
    for k, (label, errors) in enumerate(curves.items()):   # 10 colours, then the next line style
        x, y = ced(errors, threshold)
        ax.plot(x * 100, y, color=colours[k % 10], linestyle=("-", "--", ":")[k // 10 % 3],
                label=f"{label} (AUC {auc(errors, threshold):.3f})")
    ax.set_xlim(0, threshold * 100)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"NME ({norm}) %" if norm else "NME %")
    ax.set_ylabel("fraction of faces")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 6:   # a long legend goes beside the axes instead of over the curves
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    else:
        ax.legend(loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
