"""``facemark detect``, ``align`` and ``demo``: the inference pipeline on images, videos and folders."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..core.errors import DataError, FacemarkError
from ..inference.detectors import DEFAULT_DETECTOR, DETECTORS
from ..inference.runtime import DEFAULT_MODEL, PRECISIONS
from .base import EXIT_NO_FACE, EXIT_OK, EXIT_UNREADABLE, command


def _landmarker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name or path to an .onnx (default {DEFAULT_MODEL})")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names(),
                   help=f"face detector (default {DEFAULT_DETECTOR})")
    p.add_argument("--refine", action="store_true",
                   help="frame the model's crop by the landmarks of a first pass on the detector box (default: "
                        "the detector box alone)")
    p.add_argument("--framer", default="pfld68_fast",
                   help="model of --refine's first pass (default pfld68_fast; 'self': the model)")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--flip", action="store_true", help="average each face with its mirror (2x model cost)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (int8 where the model has it and the CPU runs it fast), fp32 or int8")
    p.add_argument("--min-score", type=float, default=0.0,
                   help="drop detections scoring below this (scores are in [0, 1] for facemark, yunet, mediapipe)")
    p.add_argument("--min-face", type=float, default=0.0, help="drop faces smaller than this many pixels")


def _landmarker(a: argparse.Namespace):
    from ..inference.landmarker import Landmarker

    return Landmarker(a.model, a.detector, refine=a.refine, threads=a.threads, flip=a.flip,
                      precision=a.precision, framer=None if a.framer == "self" else a.framer,
                      min_score=a.min_score, min_face=a.min_face)


def _detect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="images, videos or folders of them")
    p.add_argument("--json", action="store_true", help="one JSON object per image (per frame for videos) per line")
    p.add_argument("--out", type=Path, help="append the JSON records to this file instead of printing them")
    p.add_argument("--resume", action="store_true", help="with --out: skip the inputs the file already holds")
    p.add_argument("--draw", type=Path,
                   help="write annotated copies: a file for one input, else a folder mirroring the inputs' folders "
                        "(videos as annotated videos)")
    p.add_argument("--batch", type=int, default=16, help="images per model call (default 16)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _landmarker_args(p)


class _Status:
    """The exit status of a run over many inputs, and its one-line reports on stderr."""

    def __init__(self) -> None:
        self.code = EXIT_OK

    def no_face(self, what: str) -> None:
        print(f"facemark: {what}: no face found", file=sys.stderr)
        self.code = max(self.code, EXIT_NO_FACE)

    def unreadable(self, e: DataError) -> None:
        print(f"facemark: error: {e}", file=sys.stderr)
        self.code = EXIT_UNREADABLE


def _progress(total: int, quiet: bool, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, disable=quiet or not sys.stderr.isatty(), leave=False)


def _batches(frames, size: int):
    """Lists of up to ``size`` frames, in order; a file that failed to read comes alone."""
    chunk = []
    for f in frames:
        if f.error is not None:
            if chunk:
                yield chunk
                chunk = []
            yield [f]
            continue
        chunk.append(f)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@command("detect", _detect_args)
def _detect(a: argparse.Namespace) -> int:
    """Find faces and their landmarks and head pose in images, videos and folders (exit statuses: README)."""
    from ..inference.draw import draw_faces
    from ..io.images import write_image
    from ..io.records import Records
    from ..io.video import VideoOut, fps, is_video, media_files, read_ahead

    if a.resume and a.out is None:
        raise FacemarkError("--resume needs --out (the results file to continue)")
    if a.batch < 1:
        raise FacemarkError(f"--batch {a.batch}: at least 1")
    files = media_files(a.inputs)
    if not files:
        raise DataError(a.inputs[0], "no images or videos found")
    lm = _landmarker(a)
    records = Records(a.out, a.resume) if a.out else None
    single = len(files) == 1 and a.draw is not None and a.draw.suffix != ""
    if single and is_video(files[0][0]) != (a.draw.suffix.lower() in (".mp4", ".avi")):
        raise FacemarkError(f"--draw {a.draw}: a video is drawn as a video (.mp4, .avi) and an image as an image "
                            "(.png, .jpg); or name a folder")
    status, videos = _Status(), {}
    emit = records.write if records else (lambda r: print(json.dumps(r), flush=True)) if a.json else None
    bar = _progress(len(files), a.quiet, "file")

    def finish_video(path: Path) -> None:
        out, count = videos.pop(path)
        if out is not None:
            out.close()
        if emit:
            emit({"video": str(path), "frames": count})
        bar.update()

    try:
        for chunk in _batches(read_ahead(files, frozenset(records.done) if records else frozenset()), a.batch):
            if chunk[0].error is not None:
                status.unreadable(chunk[0].error)
                if chunk[0].path in videos:
                    out, _ = videos.pop(chunk[0].path)
                    if out is not None:
                        out.discard()
                bar.update()
                continue
            for f, faces in zip(chunk, lm.batch([f.image for f in chunk])):
                for path in [p for p in videos if p != f.path]:   # frames come in order: that video is over
                    finish_video(path)
                where = str(f.path) if f.index is None else f"{f.path} frame {f.index}"
                if not faces:
                    status.no_face(where)
                h, w = f.image.shape[:2]
                rec = {"image": str(f.path), **({} if f.index is None else {"frame": f.index}), "width": w,
                       "height": h, "faces": [face.to_dict() for face in faces]}
                if emit:
                    emit(rec)
                else:
                    print(f"{where}: {len(faces)} face(s)" + "".join(
                        f"\n  box {np.round(x.box).astype(int).tolist()} score {x.score:.2f} yaw {x.pose['yaw']:+.1f}"
                        f" pitch {x.pose['pitch']:+.1f} roll {x.pose['roll']:+.1f}" for x in faces if x.pose))
                if is_video(f.path):
                    if f.path not in videos:
                        dest = a.draw if single else a.draw / f.rel.with_suffix(".mp4") if a.draw else None
                        videos[f.path] = (VideoOut(dest, fps(f.path)) if dest else None, 0)
                    out, count = videos[f.path]
                    if out is not None:
                        out.write(draw_faces(f.image, faces))
                    videos[f.path] = (out, count + 1)
                else:
                    if a.draw is not None:
                        write_image(a.draw if single else a.draw / f.rel.with_suffix(".png"), draw_faces(f.image, faces))
                    bar.update()
        for path in list(videos):
            finish_video(path)
    finally:
        for out, _ in videos.values():
            if out is not None:
                out.discard()
        if records:
            records.close()
        bar.close()
    return status.code


def _align_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="images or folders of images")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for the aligned crops (RELATIVE_NAME_K.png, mirroring the inputs' folders)")
    p.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _landmarker_args(p)


@command("align", _align_args)
def _align(a: argparse.Namespace) -> int:
    """Write an aligned crop per face (similarity warp of the 5 points onto the standard template)."""
    from ..core.align import align_face
    from ..io.images import read_image, write_image
    from ..io.video import is_video, media_files

    if a.size < 8:
        raise FacemarkError(f"--size {a.size}: an aligned crop is at least 8 pixels wide")
    files = [(p, rel) for p, rel in media_files(a.inputs) if not is_video(p)]
    if not files:
        raise DataError(a.inputs[0], "no images found")
    lm = _landmarker(a)
    status = _Status()
    with _progress(len(files), a.quiet, "image") as bar:
        for path, rel in files:
            try:
                image = read_image(path)
            except DataError as e:
                status.unreadable(e)
                continue
            faces = lm.detect(image)
            if not faces:
                status.no_face(str(path))
            for k, f in enumerate(faces):
                write_image(a.out / rel.parent / f"{rel.stem}_{k}.png", align_face(image, f.five, a.size))
            print(f"{path}: {len(faces)} aligned face(s)")
            bar.update()
    return status.code


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("facemark_demo.png"), help="annotated PNG (facemark_demo.png)")
    _landmarker_args(p)


@command("demo", _demo_args)
def _demo(a: argparse.Namespace) -> int:
    """Run the pipeline on the bundled sample photos and write one annotated PNG."""
    import cv2

    from ..inference.draw import draw_faces
    from ..io.images import read_image, write_image

    lm = _landmarker(a)
    sample_dir = Path(__file__).parents[1] / "samples"
    tiles = []
    for path in sorted(p for p in sample_dir.iterdir() if p.suffix in (".jpg", ".png", ".ppm")):
        image = read_image(path)
        faces = lm.detect(image)
        print(f"{path.name}: {len(faces)} face(s)" + "".join(
            f"; yaw {f.pose['yaw']:+.0f} pitch {f.pose['pitch']:+.0f} roll {f.pose['roll']:+.0f}" for f in faces))
        tile = draw_faces(image, faces)
        scale = 360 / tile.shape[0]
        tiles.append(cv2.resize(tile, (round(tile.shape[1] * scale), 360), interpolation=cv2.INTER_AREA))
    write_image(a.out, np.hstack(tiles))
    print(f"wrote {a.out}")
    return 0
