"""Media inputs and outputs: images, videos, folders of numbered frames and cameras, read as RGB frames (in a
background thread, ahead of the model), and annotated videos written whole or not at all."""
from __future__ import annotations

import os
import queue
import re
import threading
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from ..core.errors import DataError
from .datasets import IMAGE_EXTS
from .images import read_image

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# FFmpeg (inside OpenCV) prints its own decoder complaints on stderr; a broken video is reported in one line here
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


class Source(NamedTuple):
    """One input: an image, a video file, a folder of numbered frames read as one stream (``sequence``) or a
    camera (``camera``, ``path`` ``camera:N``); ``rel`` names its outputs."""

    path: Path
    rel: Path
    kind: str    # "image", "video", "sequence" or "camera"

    @property
    def stream(self) -> bool:
        """Whether its frames follow one another in time (tracked, not detected one by one)."""
        return self.kind != "image"


def camera(index: int) -> Source:
    return Source(Path(f"camera:{index}"), Path(f"camera{index}"), "camera")


def media_files(paths: list[Path], sequences: bool = False) -> list[Source]:
    """Every image and video under ``paths`` (folders recursively, sorted; files as given), or with
    ``sequences`` each folder as one stream of its images in frame-number order. Two inputs with the same
    relative name are an error, since outputs named by it would overwrite each other."""
    out: list[Source] = []
    for p in paths:
        if p.is_dir() and sequences:
            out.append(Source(p, Path(p.name), "sequence"))
        elif p.is_dir():
            out += [Source(q, q.relative_to(p), "video" if is_video(q) else "image") for q in sorted(p.rglob("*"))
                    if q.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS]
        else:
            out.append(Source(p, Path(p.name), "video" if is_video(p) else "image"))
    seen: dict[Path, Path] = {}
    for src in out:
        key = src.rel.with_suffix("") if src.kind != "sequence" else src.rel
        if key in seen:
            raise DataError(src.path, f"has the same output name as {seen[key]} ({key}); name them apart")
        seen[key] = src.path
    return out


def _frame_number(path: Path) -> tuple:
    """Sort key of a sequence's frames: the numbers in the name compared as numbers (frame2 before frame10)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def frames(src: Source) -> Iterator[tuple[int | None, np.ndarray]]:
    """(frame index, RGB image) pairs: one with index None for an image, one per frame for a stream. A video
    that stops decoding before the frame count its header gives raises a DataError after the frames read."""
    if src.kind == "image":
        yield None, read_image(src.path)
        return
    if src.kind == "sequence":
        files = sorted((q for q in src.path.iterdir() if q.suffix.lower() in IMAGE_EXTS), key=_frame_number)
        if not files:
            raise DataError(src.path, "no images in this sequence folder")
        for k, q in enumerate(files):
            yield k, read_image(q)
        return
    import cv2

    cap = cv2.VideoCapture(int(src.path.name.split(":")[1]) if src.kind == "camera" else str(src.path))
    if not cap.isOpened():
        raise DataError(src.path, "cannot open camera" if src.kind == "camera" else "cannot open video")
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if src.kind == "video" else 0
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
        raise DataError(src.path, "video has no readable frames")
    if expected > 0 and k < expected - 1:   # headers may count one frame more than the stream holds
        raise DataError(src.path, f"decoding stopped after frame {k - 1} of {expected} (the frames read are kept)")


def fps(src: Source, default: float = 25.0) -> float:
    """A stream's frame rate (``default`` where the file does not say, and for sequences)."""
    if src.kind not in ("video", "camera"):
        return default
    import cv2

    cap = cv2.VideoCapture(int(src.path.name.split(":")[1]) if src.kind == "camera" else str(src.path))
    rate = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return rate if rate and rate > 0 else default


class Frame(NamedTuple):
    """One decoded input: an image (``index`` None) or a stream's frame, or the error that stopped its source."""

    source: Source
    index: int | None
    image: np.ndarray | None
    error: DataError | None = None

    @property
    def path(self) -> Path:
        return self.source.path


def read_ahead(sources: list[Source], skip: frozenset[str] = frozenset(), depth: int = 32) -> Iterator[Frame]:
    """The frames of ``sources`` in order, decoded on a background thread at most ``depth`` frames ahead (so
    memory stays bounded however many files there are); sources named in ``skip`` are not read."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for src in sources:
                if str(src.path) in skip:
                    continue
                try:
                    for k, image in frames(src):
                        if stop.is_set():
                            return
                        q.put(Frame(src, k, image))
                except DataError as e:
                    q.put(Frame(src, None, None, e))
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
