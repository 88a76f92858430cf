"""The one step every user of a landmark model takes: frame a face in a crop, run the model on the crop,
decode, and map the points back to the image.

A ``CropPredictor`` is anything with an ``input_size`` that maps (B, S, S, 3) RGB uint8 crops to (B, N, D)
points in crop pixels: the ONNX models of ``runtime``, and in training the torch model being trained
(``facemark.training.predict``). Inference, evaluation, validation, pseudo-labelling and the benchmarks all
go through ``predict``.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol, Sequence

import numpy as np

from ..core.crop import Crop, crop_from_landmarks


class CropPredictor(Protocol):
    input_size: int

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) RGB uint8 crops -> (B, N, D) points in crop pixels."""


class Analysis(NamedTuple):
    """What a model reads from a batch of crops (``OnnxLandmarkModel.analyse``): (B, N, D) points; (B,) the
    confidence that each crop holds a face (None for a model without one); (B, N) each point's expected error in
    pixels (None without an uncertainty calibration); (B, N) each point's probability of being in sight (None
    for a model without a visibility head)."""

    points: np.ndarray
    confidence: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    visibility: np.ndarray | None = None

    def to_source(self, crops: Sequence[Crop]) -> "Analysis":
        """The same read-outs of crop-pixel analyses in the source images the ``crops`` were cut from."""
        pts = np.stack([c.to_source(p) for c, p in zip(crops, self.points)])
        unc = self.uncertainty
        if unc is not None:
            unc = unc * np.array([c.side / c.size for c in crops])[:, None]
        return self._replace(points=pts, uncertainty=unc)


def predict_warped(model: CropPredictor, pixels: np.ndarray, crops: Sequence[Crop]) -> np.ndarray:
    """(B, N, D) source-image points of faces already warped into ``crops`` (``pixels``: (B, S, S, 3))."""
    return np.stack([c.to_source(p) for c, p in zip(crops, model(pixels))])


def predict_analysed(model: CropPredictor, images: Sequence[np.ndarray], crops: Sequence[Crop]) -> Analysis:
    """``predict``'s points (one pass) with what else the model reads (``Analysis``: uncertainty in source-image
    pixels, visibility) where it has an ``analyse`` (the shipped models); points alone for others."""
    if not hasattr(model, "analyse"):
        return Analysis(predict(model, images, crops))
    return model.analyse(np.stack([c.warp(im) for c, im in zip(crops, images)])).to_source(crops)


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
