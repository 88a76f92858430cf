"""Video and image inputs as a stream of RGB frames."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.errors import DataError
from .datasets import IMAGE_EXTS
from .images import read_image

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def media_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their images and videos (recursively, sorted); files are kept as given."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS)
        else:
            out.append(p)
    return out


def frames(path: Path) -> Iterator[tuple[int | None, np.ndarray]]:
    """(frame index, RGB image) pairs: one with index None for an image, one per frame for a video."""
    if path.suffix.lower() not in VIDEO_EXTS:
        yield None, read_image(path)
        return
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(path, "cannot open video")
    k = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield k, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            k += 1
    finally:
        cap.release()
    if k == 0:
        raise DataError(path, "video has no readable frames")
