"""Image loading: any file OpenCV reads becomes an upright RGB uint8 array, or a DataError naming the file.

Files are turned upright by their EXIF orientation (phone photos), so every coordinate facemark returns refers
to the image as it is shown, not as its pixels are stored. Images over ``max_pixels()`` pixels (200 million by
default; ``FACEMARK_MAX_PIXELS`` sets it) are refused, from the header before decoding where the format says
its size (JPEG, PNG, WebP, GIF, BMP, TIFF), so a small file that decodes to a huge image cannot exhaust memory.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import ArgumentError, DataError
from .files import atomic_write_bytes
from .headers import read_header, upright

DEFAULT_MAX_PIXELS = 200_000_000


def max_pixels() -> int:
    """The largest image (in pixels) read_image accepts: ``FACEMARK_MAX_PIXELS``, else 200 million."""
    value = os.environ.get("FACEMARK_MAX_PIXELS", "")
    try:
        return int(value) if value else DEFAULT_MAX_PIXELS
    except ValueError:
        raise DataError("FACEMARK_MAX_PIXELS", f"not a whole number: {value!r}") from None


def to_rgb8(image: np.ndarray, source: str | Path = "image") -> np.ndarray:
    """Normalise a grey, RGB, RGBA, 16-bit or float image (HxW or HxWxC) to RGB uint8 (HxWx3).

    ``source`` names it in errors: a file's path (a DataError), or the argument it was passed as."""
    fail = (lambda problem: DataError(source, problem)) if isinstance(source, Path) else \
        (lambda problem: ArgumentError(str(source), problem))
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)) or min(img.shape[:2]) < 1:
        raise fail(f"not an image: array of shape {img.shape}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        scale = 255.0 if np.nanmax(img) <= 1.0 else 1.0
        img = np.clip(np.nan_to_num(img) * scale, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise fail(f"unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    return np.ascontiguousarray(img)


class ImageTooLarge(DataError):
    """An image over ``max_pixels()`` pixels."""


class UndecodableImage(DataError):
    """Bytes that do not decode as an image; ``known_format``: whether the header named a format (a truncated
    or corrupt file of a known format) or not (not an image, or an unsupported format)."""

    def __init__(self, path: str | Path, known_format: bool) -> None:
        self.known_format = known_format
        super().__init__(path, "cannot decode image (corrupt or unsupported format)")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as upright (EXIF orientation applied) RGB uint8 (HxWx3). Grey, RGBA and 16-bit files
    are converted."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image file not found")
    return decode_image(np.fromfile(path, dtype=np.uint8).tobytes(), path)


def decode_image(data: bytes, source: str | Path) -> np.ndarray:
    """Decode an image file's bytes as ``read_image`` does; ``source`` names it in errors (ImageTooLarge,
    UndecodableImage, or a DataError for an empty file)."""
    path = Path(source)
    if not data:
        raise DataError(path, "image file is empty")
    limit = max_pixels()
    size, orientation = read_header(data)
    if size is not None and size[0] * size[1] > limit:
        raise ImageTooLarge(path, f"image too large: {size[0]}x{size[1]} pixels, over the limit of {limit:,} "
                                  "(FACEMARK_MAX_PIXELS)")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)   # EXIF orientation: below
    if img is None:
        raise UndecodableImage(path, size is not None)
    if img.shape[0] * img.shape[1] > limit:
        raise ImageTooLarge(path, f"image too large: {img.shape[1]}x{img.shape[0]} pixels, over the limit of "
                                  f"{limit:,} (FACEMARK_MAX_PIXELS)")
    img = upright(img, orientation)
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return to_rgb8(img, path)


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image; the file appears whole or not at all."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(path, "cannot encode image for this file extension")
    atomic_write_bytes(path, buf.tobytes())
