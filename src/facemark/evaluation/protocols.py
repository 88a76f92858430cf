"""Evaluation protocols: how a model meets annotated faces.

The standard protocol crops each face from the box of its ground-truth landmarks, so no detector is in the
loop and models are compared on their landmarks alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.crop import crop_from_landmarks
from ..core.errors import DataError
from ..core.schemes import convert
from ..io.datasets import FaceSample, read_pts_folder, read_wflw
from ..inference.predictor import CropPredictor, predict_warped
from ..inference.runtime import OnnxLandmarkModel


def predict_with_landmark_boxes(model: CropPredictor, samples: list[FaceSample], chunk: int = 64) -> np.ndarray:
    """(M, N, D) predictions for annotated faces, each cropped from its ground-truth landmarks' box."""
    preds = []
    for i in range(0, len(samples), chunk):   # one image decoded at a time, a chunk of crops per model call
        part = samples[i:i + chunk]
        crops = [crop_from_landmarks(s.landmarks, model.input_size) for s in part]
        pixels = np.stack([c.warp(s.load_image()) for c, s in zip(crops, part)])
        preds.append(predict_warped(model, pixels, crops))
    return np.concatenate(preds)


def evaluate_model(model: str | Path, gt_dir: Path, threads: int | None = None, flip: bool = False,
                   decoder: str | None = None, precision: str = "fp32") -> tuple[list, list]:
    """Run ``model`` on a 300W-layout folder with boxes from the ground-truth landmarks.

    Returns (ground truths, predictions), each a list of (N, D) arrays in file order.
    """
    lm = OnnxLandmarkModel(model, threads=threads, flip=flip, decoder=decoder, precision=precision)
    samples = read_pts_folder(gt_dir, lm.scheme.n_points)
    return [s.landmarks for s in samples], list(predict_with_landmark_boxes(lm, samples))


def evaluate_wflw(model: str | Path, lists: dict[str, Path], images: Path, threads: int | None = None,
                  flip: bool = False, decoder: str | None = None,
                  precision: str = "fp32") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run ``model`` on WFLW's test lists (``io.datasets.wflw_test_lists``), boxes from the ground truth:
    (ground truths, predictions) per list. A model of another scheme is scored on the ground truth converted
    to its points (98 -> 68 keeps the outer eye corners, so the inter-ocular norm is WFLW's)."""
    lm = OnnxLandmarkModel(model, threads=threads, flip=flip, decoder=decoder, precision=precision)
    out = {}
    for name, path in lists.items():
        samples = read_wflw(path, images)
        if not samples:
            raise DataError(path, "no faces in this list")
        try:
            gt = convert(np.stack([s.landmarks for s in samples]), lm.scheme.name, "wflw98")
        except ValueError as e:
            raise DataError(path, f"cannot score a {lm.scheme.name} model on WFLW: {e}") from None
        framed = [FaceSample(s.image, g) for s, g in zip(samples, gt)]
        out[name] = (gt, predict_with_landmark_boxes(lm, framed))
    return out
