"""Media inputs and outputs: images and videos found under the paths a user names, read as RGB frames (in a
background thread, ahead of the model), and annotated videos written whole or not at all."""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from ..core.errors import DataError
from .datasets import IMAGE_EXTS
from .images import read_image

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def media_files(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, name relative to the folder it was found in) of every image and video under ``paths`` (folders
    recursively, sorted; files as given). Two inputs with the same relative name are an error, since outputs
    named by it would overwrite each other."""
    out: list[tuple[Path, Path]] = []
    for p in paths:
        if p.is_dir():
            out += [(q, q.relative_to(p)) for q in sorted(p.rglob("*")) if q.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS]
        else:
            out.append((p, Path(p.name)))
    seen: dict[Path, Path] = {}
    for file, rel in out:
        key = rel.with_suffix("")
        if key in seen:
            raise DataError(file, f"has the same output name as {seen[key]} ({key}); name them apart")
        seen[key] = file
    return out


def frames(path: Path) -> Iterator[tuple[int | None, np.ndarray]]:
    """(frame index, RGB image) pairs: one with index None for an image, one per frame for a video."""
    if not is_video(path):
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


def fps(path: Path) -> float:
    """A video's frame rate (25 where the file does not say)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    rate = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return rate if rate and rate > 0 else 25.0


class Frame(NamedTuple):
    """One decoded input: an image (``index`` None) or a video frame, or the error that stopped its file."""

    path: Path
    rel: Path
    index: int | None
    image: np.ndarray | None
    error: DataError | None = None


def read_ahead(files: list[tuple[Path, Path]], skip: frozenset[str] = frozenset(), depth: int = 32) -> Iterator[Frame]:
    """The frames of ``files`` in order, decoded on a background thread at most ``depth`` frames ahead (so
    memory stays bounded however many files there are); files named in ``skip`` are not read."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for path, rel in files:
                if str(path) in skip:
                    continue
                try:
                    for k, image in frames(path):
                        if stop.is_set():
                            return
                        q.put(Frame(path, rel, k, image))
                except DataError as e:
                    q.put(Frame(path, rel, None, None, e))
        finally:
            q.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            yield item
    finally:
        stop.set()
        while thread.is_alive():   # let the reader see the stop flag, however full the queue is
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class VideoOut:
    """An annotated video, written to a temporary file and renamed into place when ``close`` is called, so a
    stopped run leaves no partial video."""

    def __init__(self, path: Path, rate: float) -> None:
        self.path, self.rate, self.writer = path, rate, None
        self.tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.rate, rgb.shape[1::-1])
            if not self.writer.isOpened():
                raise DataError(self.path, "cannot write a video of this type")
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.tmp.replace(self.path)

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.tmp.unlink(missing_ok=True)
