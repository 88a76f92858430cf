"""Inference and evaluation subcommands of the facemark CLI."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .cli import command
from .errors import DataError
from .metrics import NORMS, nme, plot_ced, summary
from .readers import read_pts
from .runtime import DEFAULT_MODEL


def _pts_files(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise DataError(root, "folder not found")
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.pts"))}
    if not files:
        raise DataError(root, "no .pts files found")
    return files


def _print_report(report: dict, as_json: bool, label: str) -> None:
    if as_json:
        print(json.dumps(report))
        return
    print(f"{label}: {report['n']} faces, normalised by {report['norm']}")
    print(f"  NME            {report['nme'] * 100:6.3f} %")
    print(f"  FR@{report['threshold'] * 100:g}%        {report['fr'] * 100:6.3f} %")
    print(f"  AUC@{report['threshold'] * 100:g}%       {report['auc']:6.4f}")


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("gt_dir", type=Path, help="ground truth: a 300W-layout folder of .pts files (and images)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--pred", type=Path, help="folder of predicted .pts files with the same relative names")
    src.add_argument("--model", default=DEFAULT_MODEL,
                     help=f"run this model on GT_DIR's images, boxes from the GT landmarks (default {DEFAULT_MODEL})")
    p.add_argument("--norm", choices=NORMS, default="iod",
                   help="NME normaliser: iod (outer eye corners), ipd (pupils), box (sqrt(w*h) of the GT "
                        "landmarks' box), diag (its diagonal); default iod")
    p.add_argument("--threshold", type=float, default=0.1, help="failure / AUC threshold as a fraction (0.1)")
    p.add_argument("--json", action="store_true", help="print one JSON object (fractions, not percent)")
    p.add_argument("--plot", type=Path, help="write the CED curve to this PNG")
    p.add_argument("--flip", action="store_true", help="with --model: average with the mirrored crop's answer")
    p.add_argument("--decoder", choices=("argmax", "quarter", "soft_argmax"),
                   help="with --model: read a heatmap model's output with this decoder instead of its own")


@command("evaluate", _evaluate_args)
def _evaluate(a: argparse.Namespace) -> int:
    """Score landmarks against ground truth: NME, failure rate and AUC of the CED."""
    gt_files = _pts_files(a.gt_dir)
    if a.pred is not None:
        pred_files = _pts_files(a.pred)
        missing = [k for k in gt_files if k not in pred_files]
        if missing:
            raise DataError(a.pred / missing[0], f"no prediction for ground truth {gt_files[missing[0]]}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        gt = [read_pts(p) for p in gt_files.values()]
        pred = [read_pts(pred_files[k], len(g)) for k, g in zip(gt_files, gt)]
        label = str(a.pred)
    else:
        from .landmarker import evaluate_model

        gt, pred = evaluate_model(a.model, a.gt_dir, flip=a.flip, decoder=a.decoder)
        label = a.model + (" +flip" if a.flip else "") + (f" ({a.decoder})" if a.decoder else "")
    if len({len(g) for g in gt}) != 1:
        raise DataError(a.gt_dir, "ground-truth files have different point counts")
    errors = nme(np.stack(pred), np.stack(gt), a.norm)
    report = summary(errors, a.norm, a.threshold)
    if a.plot:
        plot_ced({label: errors}, a.plot, a.threshold, norm=a.norm)
    _print_report(report, a.json, label)
    return 0


# --- detect / align / demo ----------------------------------------------------------------------------------

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _inputs(paths: list[Path]) -> list[Path]:
    """Expand folders into their images and videos (recursively, sorted); files are kept as given."""
    from .readers import IMAGE_EXTS

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS)
        else:
            out.append(p)
    return out


def _frames(path: Path):
    """(label, RGB image) pairs: one for an image, one per frame for a video."""
    from .images import read_image

    if path.suffix.lower() not in VIDEO_EXTS:
        yield str(path), None, read_image(path)
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
            yield str(path), k, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            k += 1
    finally:
        cap.release()
    if k == 0:
        raise DataError(path, "video has no readable frames")


def _landmarker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name or path to an .onnx (default {DEFAULT_MODEL})")
    p.add_argument("--detector", default="haar", help="haar (default), yunet, dlib, mediapipe")
    p.add_argument("--no-refine", action="store_true", help="skip the second pass that re-crops from landmarks")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--flip", action="store_true", help="average each face with its mirror (2x model cost)")


def _landmarker(a: argparse.Namespace):
    from .landmarker import Landmarker

    return Landmarker(a.model, a.detector, refine=not a.no_refine, threads=a.threads, flip=a.flip)


def _detect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="images, videos or folders of them")
    p.add_argument("--json", action="store_true", help="one JSON object per image (per frame for videos) per line")
    p.add_argument("--draw", type=Path, help="write annotated images: a file for one input image, else a folder")
    _landmarker_args(p)


@command("detect", _detect_args)
def _detect(a: argparse.Namespace) -> int:
    """Find faces and their landmarks and head pose. Exit status 1 if any input failed or had no face."""
    import sys

    from .draw import draw_faces
    from .images import write_image

    lm = _landmarker(a)
    files = _inputs(a.inputs)
    if not files:
        raise DataError(a.inputs[0], "no images found")
    single = len(files) == 1 and a.draw is not None and a.draw.suffix.lower() in (".png", ".jpg", ".jpeg")
    status = 0
    for path in files:
        try:
            for label, frame, image in _frames(path):
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
    import sys

    from .align import align_face
    from .images import read_image, write_image

    lm = _landmarker(a)
    status = 0
    for path in _inputs(a.inputs):
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

    from .draw import draw_faces
    from .images import read_image, write_image

    lm = _landmarker(a)
    sample_dir = Path(__file__).parent / "samples"
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


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a run's best.pt (or last.pt)")
    p.add_argument("--name", required=True, help="model name, e.g. pfld68")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "weights",
                   help="folder for NAME.onnx and NAME.json (default: the package's weights/)")
    p.add_argument("--command-line", default="", help="the training command, recorded in the model card")


@command("export", _export_args)
def _export(a: argparse.Namespace) -> int:
    """Export a trained checkpoint to ONNX with its model card (sha256, config, metrics)."""
    from .training.export import export

    path = export(a.checkpoint, a.name, a.out, {"training_command": a.command_line} if a.command_line else None)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
