"""How well a model's per-point visibility (``Face.visibility``) tells covered points from points in sight.

The check the issue asks for: each annotated face, cropped from its landmarks' box as the model sees it, once as
it is (the mean visibility there should be high) and once with a grey rectangle over its mouth (the mouth
points' box, a tenth of its size wider on each side): the visibility of the covered mouth points against that of
the brow, nose and eye points, as the area under the ROC curve (1: every uncovered point above every covered
one; 0.5: no separation).
"""
from __future__ import annotations

import numpy as np

from ..core.crop import crop_from_landmarks
from ..core.errors import FacemarkError
from ..core.mesh import self_occlusion
from ..core.points import xy
from ..io.datasets import FaceSample

GREY = 128
UPPER = ("brows", "nose", "eyes")   # the regions a rectangle over the mouth leaves in sight


def separation_auc(high: np.ndarray, low: np.ndarray) -> float:
    """P(a value of ``high`` > a value of ``low``), ties counting half: the ROC AUC (Mann-Whitney U / n m)."""
    high, low = np.sort(np.ravel(high)), np.sort(np.ravel(low))
    below = np.searchsorted(low, high, side="left")
    ties = np.searchsorted(low, high, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(high) * len(low)))


def cover_mouth(pixels: np.ndarray, pts: np.ndarray, mouth: list[int]) -> np.ndarray:
    """(S, S, 3) crop with a grey rectangle over the box of its ``mouth`` points (crop pixels), widened by a
    tenth of the box's size on each side."""
    p = xy(pts)[mouth]
    lo, hi = p.min(axis=0), p.max(axis=0)
    pad = 0.1 * (hi - lo)
    (x0, y0), (x1, y1) = np.floor(lo - pad).astype(int), np.ceil(hi + pad).astype(int)
    out = pixels.copy()
    out[max(0, y0):max(0, y1 + 1), max(0, x0):max(0, x1 + 1)] = GREY
    return out


def _clean_and_covered(model, faces: list[FaceSample], mouth: list[int],
                       chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(M, N) the model's visibility on each face cropped from its landmarks' box, as it is and with the mouth
    covered (``cover_mouth``); a chunk of faces per model call."""
    clean, covered = [], []
    for i in range(0, len(faces), chunk):
        part = faces[i:i + chunk]
        crops = [crop_from_landmarks(s.landmarks, model.input_size) for s in part]
        pixels = np.stack([c.warp(s.load_image()) for c, s in zip(crops, part)])
        pts = [c.to_crop(s.landmarks) for c, s in zip(crops, part)]
        clean.append(model.analyse(pixels).visibility)
        covered.append(model.analyse(np.stack([cover_mouth(px, p, mouth) for px, p in zip(pixels, pts)])).visibility)
    return np.concatenate(clean), np.concatenate(covered)


def _regions(model) -> tuple[list[int], list[int]]:
    """The mouth points and the brow, nose and eye points of a model with a visibility head."""
    if not getattr(model, "has_visibility", False):
        raise FacemarkError(f"model {model.card.name!r} has no visibility head")
    regions = model.scheme.regions
    if "mouth" not in regions or not all(r in regions for r in UPPER):
        raise FacemarkError(f"scheme {model.scheme.name}: no mouth, brow, nose and eye regions to compare")
    return list(regions["mouth"]), [i for r in UPPER for i in regions[r]]


def visibility_report(model, samples: list[FaceSample]) -> dict:
    """Mean visibility on the clean faces (all points, and per region) and, with the mouth covered, the AUC of
    the brow/nose/eye points' visibility against the mouth points' and both means. ``model``: an
    ``OnnxLandmarkModel`` with a visibility head."""
    mouth, upper = _regions(model)
    clean, covered = _clean_and_covered(model, samples, mouth)
    return {"faces": len(samples),
            "clean_mean": float(clean.mean()),
            "clean_mean_by_region": {name: float(clean[:, list(idx)].mean())
                                     for name, idx in model.scheme.regions.items()},
            "mouth_covered": {"auc": separation_auc(covered[:, upper], covered[:, mouth]),
                              "mouth_mean": float(covered[:, mouth].mean()),
                              "upper_mean": float(covered[:, upper].mean())}}


def self_occlusion_report(model, faces: list) -> dict:
    """On faces with fitted 3D points (AFLW2000-3D's ``PoseSample``s), each cropped from its 2D landmarks' box:
    which points the face hides from the camera, by a z-buffer of its own 3D points' mesh
    (``core.mesh.self_occlusion``: the labels), and how well the clean faces' visibility tells them apart (AUC of
    in-sight against hidden points); then, with the mouth covered, the AUC of the brow/nose/eye points that
    are in sight against the mouth points (the check of ``visibility_report`` without the upper points the
    face itself hides)."""
    mouth, upper = _regions(model)
    clean, covered = _clean_and_covered(model, [FaceSample(s.image, s.landmarks) for s in faces], mouth)
    seen = np.array([self_occlusion(s.landmarks_3d) for s in faces])
    return {"faces": len(faces), "hidden_share": float(1 - seen.mean()),
            "self_occlusion_auc": separation_auc(clean[seen], clean[~seen]) if (~seen).any() else None,
            "mouth_covered_auc_upper_in_sight": separation_auc(covered[:, upper][seen[:, upper]], covered[:, mouth])}
