"""facemark: facial landmark detection and face alignment.

Images in the public API are numpy arrays in RGB order (HxWx3 uint8; grey, RGBA and 16-bit are converted);
coordinates are 0-based pixel centres.

    import facemark
    lm = facemark.Landmarker(model="hrnet68")
    faces = lm.detect(rgb_image)
"""
from __future__ import annotations

from typing import Any

from .errors import DataError, FacemarkError
from .metrics import auc, ced, failure_rate, nme
from .readers import FaceSample
from .schemes import convert, scheme

__version__ = "0.1.0"
__all__ = ["DataError", "Face", "FaceSample", "FacemarkError", "Landmarker", "align_face", "auc", "ced",
           "convert", "failure_rate", "head_pose", "nme", "scheme"]

_LAZY = {"Landmarker": "landmarker", "Face": "landmarker", "align_face": "align", "head_pose": "pose"}


def __getattr__(name: str) -> Any:
    """Load the inference pipeline (OpenCV, ONNX Runtime) only when it is used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'facemark' has no attribute {name!r}")
