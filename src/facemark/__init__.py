"""facemark: facial landmark detection and face alignment.

Images in the public API are numpy arrays in RGB order (HxWx3 uint8; grey, RGBA and 16-bit are converted);
coordinates are 0-based pixel centres; landmarks are (N, D) arrays with D = 2 (x, y) or 3 (x, y, z).

    import facemark
    lm = facemark.Landmarker(model="hrnet68_w16")
    faces = lm.detect(rgb_image)

The package is layered as the data flows: ``core`` (schemes, points, geometry, codecs) <- ``io`` (images,
video, datasets) <- ``inference`` (detectors, runtime, predictor, Landmarker) <- ``evaluation`` (metrics,
protocols, plots) <- ``training`` (torch) <- ``cli``; see docs/architecture.md. Importing facemark loads
none of OpenCV, ONNX Runtime, torch or matplotlib: each loads when first used.
"""
from __future__ import annotations

import importlib
from typing import Any

from .core.errors import DataError, FacemarkError

__version__ = "0.1.0"

_LAZY = {
    "Landmarker": "inference.landmarker", "Face": "inference.face", "align_face": "core.align",
    "head_pose": "core.pose", "FaceSample": "io.datasets", "scheme": "core.schemes", "convert": "core.schemes",
    "auc": "evaluation.metrics", "ced": "evaluation.metrics", "failure_rate": "evaluation.metrics",
    "nme": "evaluation.metrics",
}
__all__ = ["DataError", "FacemarkError", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    """Load each public name's module only when it is first used."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'facemark' has no attribute {name!r}")
