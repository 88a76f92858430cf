"""Knowledge distillation from shipped models: a teacher labels every augmented training crop.

The teacher is one or more shipped (ONNX) landmark models, flip-averaged if asked; its landmarks on the very
crop the student sees become a second target, encoded by the student's own codec, so any student (regression,
heatmap, PIPNet) learns from any teacher (MobileFAN's output distillation, on decoded landmarks; the teacher
runs on the batch-preparing threads, through ONNX Runtime, one thread each).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import DataError
from ..inference.runtime import OnnxLandmarkModel


class Teacher:
    """(B, S, S, 3) RGB uint8 crops of side S -> (B, N, D) landmarks in the same crop pixels, averaged over
    the teacher models (each run at its own input size)."""

    def __init__(self, models: list[str], flip: bool, scheme: str, where: str) -> None:
        # fp32 everywhere: int8 runs only on some CPUs, and a run's targets must not depend on the machine
        self.models = [OnnxLandmarkModel(m, threads=1, flip=flip, precision="fp32") for m in models]
        for name, m in zip(models, self.models):
            if m.scheme.name != scheme:
                raise DataError(where, f"distill.teachers: {name} predicts {m.scheme.name}, the student {scheme}")

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        side = crops.shape[1]
        preds = []
        for m in self.models:
            t = m.input_size
            x = crops if t == side else np.stack([cv2.resize(c, (t, t), interpolation=cv2.INTER_AREA
                                                             if t < side else cv2.INTER_LINEAR) for c in crops])
            pts = m(x)
            pts[..., :2] = (pts[..., :2] + 0.5) * (side / t) - 0.5   # teacher crop pixels -> student crop pixels
            pts[..., 2:] *= side / t
            preds.append(pts)
        return np.mean(preds, axis=0)
