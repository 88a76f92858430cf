"""The one step every user of a landmark model takes: frame a face in a crop, run the model on the crop,
decode, and map the points back to the image.

A ``CropPredictor`` is anything with an ``input_size`` that maps (B, S, S, 3) RGB uint8 crops to (B, N, D)
points in crop pixels: the ONNX models of ``runtime``, and in training the torch model being trained
(``facemark.training.predict``). Inference, evaluation, validation, pseudo-labelling and the benchmarks all
go through ``predict``.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from ..core.crop import Crop, crop_from_landmarks


class CropPredictor(Protocol):
    input_size: int

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) RGB uint8 crops -> (B, N, D) points in crop pixels."""


def predict_warped(model: CropPredictor, pixels: np.ndarray, crops: Sequence[Crop]) -> np.ndarray:
    """(B, N, D) source-image points of faces already warped into ``crops`` (``pixels``: (B, S, S, 3))."""
    return np.stack([c.to_source(p) for c, p in zip(crops, model(pixels))])


def predict_uncertain(model: CropPredictor, images: Sequence[np.ndarray],
                      crops: Sequence[Crop]) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict``'s points (one pass) and (B, N) each point's expected error in source-image pixels, for a model
    with a calibrated uncertainty (``OnnxLandmarkModel.analyse``); None for others."""
    if not hasattr(model, "analyse"):
        return predict(model, images, crops), None
    pixels = np.stack([c.warp(im) for c, im in zip(crops, images)])
    pts, _, unc = model.analyse(pixels)
    out = np.stack([c.to_source(p) for c, p in zip(crops, pts)])
    return out, None if unc is None else unc * np.array([c.side / c.size for c in crops])[:, None]


def predict(model: CropPredictor, images: Sequence[np.ndarray], crops: Sequence[Crop], passes: int = 1,
            chunk: int | None = None) -> np.ndarray:
    """(B, N, D) points of face ``i`` of ``images[i]`` framed by ``crops[i]``, in source-image pixels.

    Each further pass re-frames the face by the previous pass's landmarks (the framing the models are
    trained on), which removes most of a detector box's framing error. ``chunk`` bounds how many crops go
    through the model at once (default: all).
    """
    step = chunk or max(1, len(crops))

    def once(crops: Sequence[Crop]) -> np.ndarray:
        return np.concatenate([predict_warped(model, np.stack([c.warp(im) for c, im in
                                                               zip(crops[i:i + step], images[i:i + step])]),
                                              crops[i:i + step]) for i in range(0, len(crops), step)])

    pts = once(crops)
    for _ in range(passes - 1):
        pts = once([crop_from_landmarks(p, model.input_size) for p in pts])
    return pts
