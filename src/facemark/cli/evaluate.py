"""``facemark evaluate``: landmarks (a model's, or a folder of predictions) against ground truth."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..core.codecs import DECODERS
from ..core.errors import DataError, need
from ..evaluation.metrics import NORMS, nme, normaliser, summary, uncertainty_report
from ..inference.runtime import DEFAULT_MODEL
from ..io.datasets import list_pts, read_pts, wflw_test_lists
from .base import command


def _pts_files(root: Path) -> dict[str, Path]:
    files = list_pts(root)
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
    if "uncertainty" in report:
        u = report["uncertainty"]
        curve = "  ".join(f"{k}% {v * 100:.3f}%" for k, v in u["reject"].items())
        print(f"  uncertainty    calibration (actual / expected error) {u['calibration']:.3f}, rank correlation of "
              f"expected and actual NME {u['spearman']:.3f}")
        print(f"  NME of the most certain faces: {curve}")


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("gt_dir", type=Path, help="ground truth: a 300W-layout folder of .pts files (and images), or "
                                             "WFLW's annotation folder (its per-subset table)")
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
    p.add_argument("--precision", choices=("fp32", "int8", "auto"), default="fp32",
                   help="with --model: the runtime variant to score (default fp32, the reference)")
    p.add_argument("--images", type=Path, help="WFLW: the images folder (default: WFLW_images beside GT_DIR)")
    p.add_argument("--decoder", choices=DECODERS + ("decimal",),
                   help="with --model: read the output with this decoder instead of its own (heatmap models; decimal: HIH)")


@command("evaluate", _evaluate_args)
def _evaluate(a: argparse.Namespace) -> int:
    """Score landmarks against ground truth: NME, failure rate and AUC of the CED."""
    if a.plot:
        need("matplotlib", "plot", "--plot")      # before the work, not after it
    if a.gt_dir.is_dir() and wflw_test_lists(a.gt_dir):
        return _evaluate_wflw(a)
    gt_files = _pts_files(a.gt_dir)
    if a.pred is not None:
        unc = None
        pred_files = _pts_files(a.pred)
        missing = [k for k in gt_files if k not in pred_files]
        if missing:
            raise DataError(a.pred / missing[0], f"no prediction for ground truth {gt_files[missing[0]]}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        gt = [read_pts(p) for p in gt_files.values()]
        pred = [read_pts(pred_files[k], len(g)) for k, g in zip(gt_files, gt)]
        label = str(a.pred)
    else:
        from ..evaluation.protocols import evaluate_model

        gt, pred, unc = evaluate_model(a.model, a.gt_dir, flip=a.flip, decoder=a.decoder, precision=a.precision)
        label = a.model + (" +flip" if a.flip else "") + (f" ({a.decoder})" if a.decoder else "") + \
            (f" [{a.precision}]" if a.precision != "fp32" else "")
    if len({len(g) for g in gt}) != 1:
        raise DataError(a.gt_dir, "ground-truth files have different point counts")
    errors = nme(np.stack(pred), np.stack(gt), a.norm)
    report = summary(errors, a.norm, a.threshold)
    if unc is not None:   # the model's own expected errors against the actual ones
        g = np.stack(gt)[..., :2]
        report["uncertainty"] = uncertainty_report(unc, np.stack(pred), g, normaliser(g, a.norm))
    if a.plot:
        from ..evaluation.plots import plot_ced

        plot_ced({label: errors}, a.plot, a.threshold, norm=a.norm)
    _print_report(report, a.json, label)
    return 0


def _evaluate_wflw(a: argparse.Namespace) -> int:
    """WFLW's standard table: NME, FR and AUC on the full test set and on each subset."""
    from ..evaluation.protocols import evaluate_wflw

    if a.pred is not None:
        raise DataError(a.gt_dir, "WFLW lists are scored with --model (predictions are not read from .pts here)")
    images = a.images or a.gt_dir.parent / "WFLW_images"
    results = evaluate_wflw(a.model, wflw_test_lists(a.gt_dir), images, flip=a.flip, decoder=a.decoder,
                            precision=a.precision)
    reports = {name: summary(nme(pred, gt, a.norm), a.norm, a.threshold) for name, (gt, pred) in results.items()}
    if a.plot:
        from ..evaluation.plots import plot_ced

        plot_ced({n: nme(p, g, a.norm) for n, (g, p) in results.items()}, a.plot, a.threshold, norm=a.norm)
    if a.json:
        print(json.dumps({"model": a.model, "subsets": reports}))
        return 0
    print(f"{a.model} on WFLW ({a.norm}): subset, faces, NME, FR@{a.threshold * 100:g}%, AUC@{a.threshold * 100:g}%")
    for name, r in reports.items():
        print(f"  {name:13s} {r['n']:5d}  {r['nme'] * 100:6.3f} %  {r['fr'] * 100:6.3f} %  {r['auc']:6.4f}")
    return 0


def _pose_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="AFLW2000-3D layout: NAME.jpg + NAME.mat + NAME.pts")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=DEFAULT_MODEL, help=f"landmark model (default {DEFAULT_MODEL})")
    src.add_argument("--annotations", action="store_true",
                     help="pose from the annotated 2D landmarks instead of a model's (the pose method alone)")
    p.add_argument("--precision", choices=("fp32", "int8", "auto"), default="fp32")
    p.add_argument("--flip", action="store_true", help="average each face with its mirror (2x model cost)")
    p.add_argument("--half", choices=("even", "odd"),
                   help="only the faces at even (odd) positions in file-name order; on faces3d/aflw2000 the even "
                        "half built the shape model and is the validation half")
    p.add_argument("--json", action="store_true", help="print one JSON object")


@command("evaluate-pose", _pose_args)
def _evaluate_pose(a: argparse.Namespace) -> int:
    """Head-pose MAE and large-pose landmark NME on AFLW2000-3D-style faces (faces beyond 99 degrees dropped)."""
    from ..evaluation.protocols import evaluate_pose
    from ..io.datasets import read_aflw2000

    rep = evaluate_pose(read_aflw2000(a.folder), None if a.annotations else a.model, precision=a.precision,
                        flip=a.flip, half=a.half)
    if a.json:
        print(json.dumps(rep))
        return 0
    m = rep["mae"]
    part = f" ({a.half} half)" if a.half else ""
    print(f"{rep['model'] or 'annotated landmarks'} on {a.folder}{part}: {rep['faces']} faces "
          f"({rep['dropped']} beyond 99 degrees dropped)")
    print(f"  pose MAE (degrees)  yaw {m['yaw']:.2f}  pitch {m['pitch']:.2f}  roll {m['roll']:.2f}  mean {m['mean']:.2f}")
    for key, label in (("nme_2d", "2D re-annotation"), ("nme_3d_xy", "3D fit's x, y")):
        r = rep[key]
        bins = "  ".join(f"{k} {v * 100:.2f}%" for k, v in r.items() if "-" in k)
        print(f"  NME/box vs {label}: all {r['all'] * 100:.2f}%  {bins}  balanced {r['balanced'] * 100:.2f}%")
    if "nme_3d" in rep:
        print(f"  3D NME/box vs the 3D fit: {rep['nme_3d']['all'] * 100:.2f}%")
    return 0


def _video_args(p: argparse.ArgumentParser) -> None:
    from ..inference.detectors import DEFAULT_DETECTOR, DETECTORS
    from ..inference.tracker import DETECT_EVERY

    p.add_argument("--faces", type=Path,
                   help="a 68-point folder (NAME.jpg + NAME.pts): moving-face clips with exact ground truth are "
                        "made from its faces")
    p.add_argument("--real", type=Path, help="a folder of real clips (no ground truth): second difference, time")
    p.add_argument("--clips", type=int, default=12, help="moving synthetic clips (default 12)")
    p.add_argument("--still", type=int, default=2, help="still synthetic clips: the face held, new noise (default 2)")
    p.add_argument("--frames", type=int, default=90, help="frames per synthetic clip (default 90, at 25 fps)")
    p.add_argument("--seed", type=int, default=0, help="which faces and motions (default 0)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"landmark model (default {DEFAULT_MODEL})")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names())
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    p.add_argument("--detect-every", type=int, default=DETECT_EVERY, help="the tracker's detector period")
    p.add_argument("--tools", nargs="*", choices=("mediapipe",), default=[],
                   help="also score MediaPipe's face mesh in video mode (pip install mediapipe==0.10.21)")
    p.add_argument("--json", action="store_true", help="print one JSON object (fractions, not percent)")


@command("evaluate-video", _video_args)
def _evaluate_video(a: argparse.Namespace) -> int:
    """Video tracking: frames found, NME, jitter and lag on synthetic moving-face clips; second difference and
    wall time on real clips; facemark per frame and tracked (and MediaPipe's video mode) in one run."""
    from ..evaluation.other_tools import MESH_TO_IBUG, MediaPipeVideo
    from ..evaluation.video import facemark_methods, real_scores, synthetic_scores
    from ..inference.landmarker import Landmarker
    from ..io.datasets import read_pts_folder
    from ..io.video import VIDEO_EXTS

    if a.faces is None and a.real is None:
        raise DataError(Path("."), "name --faces DIR (synthetic clips) and/or --real DIR (real clips)")
    for name, value, least in (("--clips", a.clips, 0), ("--still", a.still, 0), ("--frames", a.frames, 12)):
        if value < least:
            raise DataError(Path("."), f"{name} {value}: at least {least}")
    lm = Landmarker(a.model, a.detector, threads=a.threads)
    methods = facemark_methods(lm, {"detect_every": a.detect_every})
    if "mediapipe" in a.tools:
        mp = MediaPipeVideo()
        methods["mediapipe video"] = lambda frames, fps: mp.clip(frames)
    shared = tuple(sorted(MESH_TO_IBUG))
    report: dict = {"model": a.model, "detector": a.detector, "threads": a.threads, "detect_every": a.detect_every}
    if a.faces is not None:
        samples = read_pts_folder(a.faces, 68)
        if not samples:
            raise DataError(a.faces, "no 68-point faces found")
        report["synthetic"] = synthetic_scores(methods, samples, a.clips, a.still, a.frames, a.seed, shared)
    if a.real is not None:
        clips = sorted(p for p in a.real.iterdir() if p.suffix.lower() in VIDEO_EXTS) if a.real.is_dir() else []
        if not clips:
            raise DataError(a.real, "no video clips found")
        report["real"] = real_scores(methods, clips, shared)
    if a.json:
        print(json.dumps(report))
        return 0
    pct = lambda v: "-" if v is None else f"{v * 100:.2f}"   # noqa: E731
    if "synthetic" in report:
        print(f"synthetic clips from {a.faces}: {a.clips} moving, {a.still} still ({a.frames} frames, seed {a.seed}); "
              f"% of the inter-ocular distance; *_shared: the {len(shared)} points MediaPipe's mesh shares")
        print("  method               found   NME  NME_sh  jitter  jit_sh  lag ms | still jitter  jit_sh")
        for name, r in report["synthetic"].items():
            m, s = r["moving"], r["still"]
            print(f"  {name:19s} {pct(m.get('found')):>6s} {pct(m.get('nme')):>5s} {pct(m.get('nme_shared')):>6s}"
                  f" {pct(m.get('jitter')):>7s} {pct(m.get('jitter_shared')):>7s} {m.get('lag_ms') or 0:7.1f} |"
                  f" {pct(s.get('jitter')):>12s} {pct(s.get('jitter_shared')):>7s}")
    if "real" in report:
        print(f"real clips in {a.real} (second difference of the shared points, % of the inter-ocular distance)")
        for name, r in report["real"].items():
            sd = [c["second_difference"] for c in r["clips"]]
            print(f"  {name:19s} {r['frames']} frames in {r['seconds']:.1f} s ({r['ms_per_frame']:.1f} ms a frame); "
                  "second difference " + " ".join(pct(v) for v in sd))
    return 0
