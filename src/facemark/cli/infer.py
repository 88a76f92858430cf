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
    p.add_argument("--min-quality", type=float, default=0.0,
                   help="report (on stderr) and leave out faces whose quality (the model's own expected error, "
                        "Face.quality in [0, 1]) is below this; needs a model with an uncertainty calibration")


def _settings(a: argparse.Namespace) -> dict:
    """The Landmarker's keyword arguments from the command line."""
    return {"model": a.model, "detector": a.detector, "refine": a.refine, "threads": a.threads, "flip": a.flip,
            "precision": a.precision, "framer": None if a.framer == "self" else a.framer,
            "min_score": a.min_score, "min_face": a.min_face}


def _landmarker(a: argparse.Namespace):
    from ..inference.landmarker import Landmarker

    lm = Landmarker(**_settings(a))
    if a.min_quality and lm.model.calibration is None:
        raise FacemarkError(f"--min-quality: model {a.model} has no uncertainty calibration "
                            "(tools/calibrate_uncertainty.py)")
    return lm


def _good(faces: list, a: argparse.Namespace, where: str) -> list:
    """The faces at or above --min-quality; each one left out is reported in one line."""
    if not a.min_quality:
        return faces
    for k, f in enumerate(faces):
        if f.quality < a.min_quality:
            print(f"facemark: {where}: face {k} left out: quality {f.quality:.2f} below {a.min_quality:g}",
                  file=sys.stderr)
    return [f for f in faces if f.quality >= a.min_quality]


def _detect_args(p: argparse.ArgumentParser) -> None:
    from ..inference.tracker import DETECT_EVERY

    p.add_argument("inputs", type=Path, nargs="*", help="images, videos or folders of them")
    p.add_argument("--camera", type=int, action="append", metavar="INDEX",
                   help="also read this camera (OpenCV's index, e.g. 0) until it stops or Ctrl-C")
    p.add_argument("--sequence", action="store_true",
                   help="read each folder as one video: its images in frame-number order")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of --sequence folders (default 25)")
    p.add_argument("--json", action="store_true", help="one JSON object per image (per frame for videos) per line")
    p.add_argument("--out", type=Path, help="append the JSON records to this file instead of printing them")
    p.add_argument("--resume", action="store_true", help="with --out: skip the inputs the file already holds")
    p.add_argument("--draw", type=Path,
                   help="write annotated copies: a file for one input, else a folder mirroring the inputs' folders "
                        "(videos as annotated videos at the input's frame rate and size)")
    p.add_argument("--batch", type=int, default=16, help="images per model call (default 16)")
    p.add_argument("--per-frame", action="store_true",
                   help="videos: detect faces in every frame as in a photo (no tracking, no smoothing)")
    p.add_argument("--detect-every", type=int, default=DETECT_EVERY,
                   help=f"videos: run the detector every N frames while faces are tracked (default {DETECT_EVERY})")
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=True,
                   help="videos: smooth the tracked points over time (One Euro filter; default on)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: spread the images over a Ray cluster's actors (extra [ray]; needs --out RESULTS.jsonl "
                        "or RESULTS.parquet; images only); default local")
    p.add_argument("--address", help="with --engine ray: the cluster to join ('auto': the running one; default: "
                                     "start Ray on this machine)")
    p.add_argument("--actors", type=int, help="with --engine ray: models side by side (default: one per CPU)")
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


def _progress(total: int | None, quiet: bool, unit: str, desc: str | None = None):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=quiet or not sys.stderr.isatty(),
                leave=False)


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


class _Stream:
    """One video (or sequence, or camera) being processed: its tracker, annotated output, frame count, clock."""

    def __init__(self, src, a: argparse.Namespace, lm, dest: Path | None) -> None:
        import time

        from ..inference.tracker import Tracker
        from ..io.video import VideoOut, fps

        self.rate = fps(src, a.fps)
        self.tracker = None if a.per_frame else Tracker(lm, self.rate, a.detect_every, a.smooth)
        self.out = VideoOut(dest, self.rate) if dest else None
        self.count, self.started = 0, time.perf_counter()
        self.bar = _progress(None, a.quiet, "frame", src.rel.name)

    def summary(self, path: Path) -> dict:
        import time

        rec = {"video": str(path), "frames": self.count}
        if self.tracker is not None:
            rec["tracks"] = self.tracker.ids_seen
        rec["fps"] = round(self.count / max(time.perf_counter() - self.started, 1e-9), 1)
        return rec


def _check_detect_args(a: argparse.Namespace) -> None:
    """The settings of ``detect`` that do not fit: one line naming the option."""
    if a.resume and a.out is None:
        raise FacemarkError("--resume needs --out (the results file to continue)")
    for name, value, least in (("--batch", a.batch, 1), ("--detect-every", a.detect_every, 1)):
        if value < least:
            raise FacemarkError(f"{name} {value}: at least {least}")
    if not a.fps > 0:
        raise FacemarkError(f"--fps {a.fps}: a frame rate above 0")
    if not a.inputs and not a.camera:
        raise FacemarkError("name images, videos or folders to read, or --camera INDEX")


def _frame_record(f, faces: list, rate: float | None) -> dict:
    """The JSON record of one image, or of one video frame (``rate``: its stream's frames per second)."""
    h, w = f.image.shape[:2]
    where = {"image": str(f.path)} if f.index is None else {"image": str(f.path), "frame": f.index,
                                                              "time": round(f.index / rate, 4)}
    return {**where, "width": w, "height": h, "faces": [face.to_dict() for face in faces]}


def _face_lines(where: str, faces: list) -> str:
    """The text report of one image or frame: its faces' boxes, scores and head poses."""
    return f"{where}: {len(faces)} face(s)" + "".join(
        f"\n  {'' if x.track is None else f'track {x.track} '}box {np.round(x.box).astype(int).tolist()} "
        f"score {x.score:.2f} yaw {x.pose['yaw']:+.1f} pitch {x.pose['pitch']:+.1f} roll {x.pose['roll']:+.1f}"
        for x in faces if x.pose)


@command("detect", _detect_args)
def _detect(a: argparse.Namespace) -> int:
    """Find faces and their landmarks and head pose in images, videos, folders and cameras; faces in videos are
    tracked from frame to frame and smoothed (exit statuses: README)."""
    from ..inference.draw import draw_faces
    from ..io.images import write_image
    from ..io.records import Records
    from ..io.video import camera, media_files, read_ahead

    _check_detect_args(a)
    if a.engine == "ray":
        return _detect_on_ray(a)
    sources = media_files(a.inputs, a.sequence) + [camera(k) for k in a.camera or []]
    if not sources:
        raise DataError(a.inputs[0], "no images or videos found")
    lm = _landmarker(a)
    records = Records(a.out, a.resume) if a.out else None
    single = len(sources) == 1 and a.draw is not None and a.draw.suffix != ""
    if single and sources[0].stream != (a.draw.suffix.lower() in (".mp4", ".avi")):
        raise FacemarkError(f"--draw {a.draw}: a video is drawn as a video (.mp4, .avi) and an image as an image "
                            "(.png, .jpg); or name a folder")
    status, streams = _Status(), {}
    emit = records.write if records else (lambda r: print(json.dumps(r), flush=True)) if a.json else None
    bar = _progress(len(sources), a.quiet, "file")

    def finish(path: Path) -> None:
        st = streams.pop(path)
        if st.out is not None:
            st.out.close()
        st.bar.close()
        if emit:
            emit(st.summary(path))
        bar.update()

    def faces_of(chunk) -> list:
        """Each frame's faces: photos (and per-frame video frames) in one model call, tracked frames in order."""
        tracked = [f.source.stream and not a.per_frame for f in chunk]
        photos = iter(lm.batch([f.image for f, t in zip(chunk, tracked) if not t]) if not all(tracked) else [])
        out = []
        for f, t in zip(chunk, tracked):
            if f.source.stream and f.path not in streams:
                dest = a.draw if single else a.draw / f.source.rel.with_suffix(".mp4") if a.draw else None
                streams[f.path] = _Stream(f.source, a, lm, dest)
            out.append(streams[f.path].tracker.update(f.image, f.index / streams[f.path].rate) if t
                       else next(photos))
        return out

    try:
        for chunk in _batches(read_ahead(sources, frozenset(records.done) if records else frozenset()), a.batch):
            if chunk[0].error is not None:
                status.unreadable(chunk[0].error)
                if chunk[0].path in streams:       # a stream that broke midway: the frames read are kept
                    finish(chunk[0].path)
                else:
                    bar.update()
                continue
            for f, faces in zip(chunk, faces_of(chunk)):
                faces = _good(faces, a, str(f.path) if f.index is None else f"{f.path} frame {f.index}")
                for path in [p for p, st in streams.items() if p != f.path and st.count]:
                    finish(path)                                    # frames come in order: that stream is over
                where = str(f.path) if f.index is None else f"{f.path} frame {f.index}"
                if not faces:
                    status.no_face(where)
                if emit:
                    emit(_frame_record(f, faces, streams[f.path].rate if f.index is not None else None))
                else:
                    print(_face_lines(where, faces))
                if f.source.stream:
                    st = streams[f.path]
                    if st.out is not None:
                        st.out.write(draw_faces(f.image, faces))
                    st.count += 1
                    st.bar.update()
                else:
                    if a.draw is not None:
                        write_image(a.draw if single else a.draw / f.source.rel.with_suffix(".png"),
                                    draw_faces(f.image, faces))
                    bar.update()
        for path in list(streams):
            finish(path)
    except KeyboardInterrupt:
        if not a.camera:
            raise
        for path in list(streams):   # a camera runs until stopped: what it recorded is kept
            finish(path)
    finally:
        for st in streams.values():
            if st.out is not None:
                st.out.discard()
            st.bar.close()
        if records:
            records.close()
        bar.close()
    return status.code


def _detect_on_ray(a: argparse.Namespace) -> int:
    """``detect --engine ray``: the images' records computed by Ray actors, streamed into ``--out``."""
    from ..serve.ray_engine import detect_on_ray, image_names, results_file

    if a.out is None:
        raise FacemarkError("--engine ray writes its results to --out RESULTS.jsonl or RESULTS.parquet")
    if a.draw is not None or a.camera or a.sequence:
        raise FacemarkError("--engine ray takes images only: leave out --draw, --camera and --sequence")
    if a.actors is not None and a.actors < 1:
        raise FacemarkError(f"--actors {a.actors}: at least 1")
    names = image_names(a.inputs)
    out = results_file(a.out, a.resume)
    todo = [n for n in names if n not in out.done]
    status = _Status()
    bar = _progress(len(todo), a.quiet, "image")
    try:
        for name, record, error, _ in detect_on_ray(todo, _settings(a), a.address, a.actors, a.batch):
            if error:
                print(f"facemark: error: {error}", file=sys.stderr)
                status.code = EXIT_UNREADABLE
            else:
                out.write(record)
                if not record["faces"]:
                    status.no_face(name)
            bar.update()
    finally:
        out.close()
        bar.close()
    return status.code


def _align_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="images or folders of images")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for the aligned crops (RELATIVE_NAME_K.png, mirroring the inputs' folders)")
    p.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: spread the images over a Ray cluster's actors (extra [ray]); default local")
    p.add_argument("--address", help="with --engine ray: the cluster to join ('auto': the running one)")
    p.add_argument("--actors", type=int, help="with --engine ray: models side by side (default: one per CPU)")
    p.add_argument("--resume", action="store_true",
                   help="with --engine ray: skip the images OUT/aligned.jsonl already lists")
    p.add_argument("--batch", type=int, default=16, help="with --engine ray: images per model call (default 16)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _landmarker_args(p)


@command("align", _align_args)
def _align(a: argparse.Namespace) -> int:
    """Write an aligned crop per face (similarity warp of the 5 points onto the standard template)."""
    from ..core.align import align_face
    from ..io.images import read_image, write_image
    from ..io.video import media_files

    if a.size < 8:
        raise FacemarkError(f"--size {a.size}: an aligned crop is at least 8 pixels wide")
    if a.engine == "ray":
        return _align_on_ray(a)
    if a.resume:
        raise FacemarkError("--resume goes with --engine ray (the local engine rewrites every crop)")
    files = [(src.path, src.rel) for src in media_files(a.inputs) if src.kind == "image"]
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
            faces = _good(lm.detect(image), a, str(path))
            if not faces:
                status.no_face(str(path))
            for k, f in enumerate(faces):
                write_image(a.out / rel.parent / f"{rel.stem}_{k}.png", align_face(image, f.five, a.size))
            print(f"{path}: {len(faces)} aligned face(s)")
            bar.update()
    return status.code


def _align_on_ray(a: argparse.Namespace) -> int:
    """``align --engine ray``: crops made by Ray actors, written as the local engine writes them, each image's
    crops listed in ``OUT/aligned.jsonl`` once written (what ``--resume`` skips)."""
    from ..io.files import atomic_write_bytes
    from ..io.records import Records
    from ..serve.ray_engine import detect_on_ray, image_names

    if a.actors is not None and a.actors < 1:
        raise FacemarkError(f"--actors {a.actors}: at least 1")
    names = image_names(a.inputs)
    manifest = Records(a.out / "aligned.jsonl", a.resume)
    todo = [n for n in names if n not in manifest.done]
    status = _Status()
    bar = _progress(len(todo), a.quiet, "image")
    try:
        for name, record, error, crops in detect_on_ray(todo, _settings(a), a.address, a.actors, a.batch, a.size):
            if error:
                print(f"facemark: error: {error}", file=sys.stderr)
                status.code = EXIT_UNREADABLE
                continue
            if not crops:
                status.no_face(name)
            rel = names[name]
            files = [rel.parent / f"{rel.stem}_{k}.png" for k in range(len(crops))]
            for f, png in zip(files, crops):
                atomic_write_bytes(a.out / f, png)
            manifest.write({"image": name, "crops": [str(f) for f in files]})
            print(f"{name}: {len(crops)} aligned face(s)")
            bar.update()
    finally:
        manifest.close()
        bar.close()
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
