"""``facemark detect``, ``align`` and ``demo``: the inference pipeline on images, videos and folders."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..inference.detectors import DETECTORS
from ..inference.runtime import DEFAULT_MODEL, PRECISIONS
from .base import command

def _landmarker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name or path to an .onnx (default {DEFAULT_MODEL})")
    p.add_argument("--detector", default="haar", choices=DETECTORS.names(), help="face detector (default haar)")
    p.add_argument("--no-refine", action="store_true",
                   help="frame the model's crop by the detector box alone, without the framer's first pass")
    p.add_argument("--framer", default="pfld68_fast",
                   help="model of the first pass that frames the crop (default pfld68_fast; 'self': the model)")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--flip", action="store_true", help="average each face with its mirror (2x model cost)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (int8 where the model has it and the CPU runs it fast), fp32 or int8")


def _landmarker(a: argparse.Namespace):
    from ..inference.landmarker import Landmarker

    return Landmarker(a.model, a.detector, refine=not a.no_refine, threads=a.threads, flip=a.flip,
                      precision=a.precision, framer=None if a.framer == "self" else a.framer)


def _detect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="images, videos or folders of them")
    p.add_argument("--json", action="store_true", help="one JSON object per image (per frame for videos) per line")
    p.add_argument("--draw", type=Path, help="write annotated images: a file for one input image, else a folder")
    _landmarker_args(p)


@command("detect", _detect_args)
def _detect(a: argparse.Namespace) -> int:
    """Find faces and their landmarks and head pose. Exit status 1 if any input failed or had no face."""
    from ..inference.draw import draw_faces
    from ..io.images import write_image
    from ..io.video import frames, media_files

    lm = _landmarker(a)
    files = media_files(a.inputs)
    if not files:
        raise DataError(a.inputs[0], "no images found")
    single = len(files) == 1 and a.draw is not None and a.draw.suffix.lower() in (".png", ".jpg", ".jpeg")
    status = 0
    for path in files:
        try:
            label = str(path)
            for frame, image in frames(path):
                faces = lm.detect(image)
                if not faces:
                    status = 1
                    print(f"facemark: {label}{'' if frame is None else f' frame {frame}'}: no face found",
                          file=sys.stderr)
                h, w = image.shape[:2]
                rec = {"image": label, **({} if frame is None else {"frame": frame}), "width": w, "height": h,
                       "faces": [f.to_dict() for f in faces]}
                if a.json:
                    print(json.dumps(rec), flush=True)
                else:
                    where = label if frame is None else f"{label} frame {frame}"
                    print(f"{where}: {len(faces)} face(s)" + "".join(
                        f"\n  box {np.round(f.box).astype(int).tolist()} score {f.score:.2f} yaw {f.pose['yaw']:+.1f}"
                        f" pitch {f.pose['pitch']:+.1f} roll {f.pose['roll']:+.1f}" for f in faces if f.pose))
                if a.draw is not None:
                    name = path.stem + ("" if frame is None else f"_{frame:06d}") + ".png"
                    write_image(a.draw if single else a.draw / name, draw_faces(image, faces))
        except DataError as e:
            status = 1
            print(f"facemark: error: {e}", file=sys.stderr)
    return status


def _align_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="images or folders of images")
    p.add_argument("--out", type=Path, required=True, help="folder for the aligned crops (NAME_K.png)")
    p.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
    _landmarker_args(p)


@command("align", _align_args)
def _align(a: argparse.Namespace) -> int:
    """Write an aligned crop per face (similarity warp of the 5 points onto the standard template)."""
    from ..core.align import align_face
    from ..io.images import read_image, write_image
    from ..io.video import media_files

    lm = _landmarker(a)
    status = 0
    for path in media_files(a.inputs):
        try:
            image = read_image(path)
            faces = lm.detect(image)
            if not faces:
                status = 1
                print(f"facemark: {path}: no face found", file=sys.stderr)
            for k, f in enumerate(faces):
                write_image(a.out / f"{path.stem}_{k}.png", align_face(image, f.five, a.size))
            print(f"{path}: {len(faces)} aligned face(s)")
        except DataError as e:
            status = 1
            print(f"facemark: error: {e}", file=sys.stderr)
    return status


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
