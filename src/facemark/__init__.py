"""facemark: facial landmark detection and face alignment.

Images in the public API are numpy arrays in RGB order (HxWx3 uint8); coordinates are 0-based pixel centres.
"""
from .errors import DataError, FacemarkError
from .metrics import auc, ced, failure_rate, nme
from .readers import FaceSample
from .schemes import convert, scheme

__version__ = "0.1.0"
__all__ = ["DataError", "FacemarkError", "FaceSample", "auc", "ced", "convert", "failure_rate", "nme", "scheme"]
