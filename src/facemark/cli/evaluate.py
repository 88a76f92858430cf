"""``facemark evaluate``: landmarks (a model's, or a folder of predictions) against ground truth."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..core.codecs import DECODERS
from ..core.errors import DataError, need
from ..evaluation.metrics import NORMS, nme, summary
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
    p.add_argument("--decoder", choices=DECODERS,
                   help="with --model: read a heatmap model's output with this decoder instead of its own")


@command("evaluate", _evaluate_args)
def _evaluate(a: argparse.Namespace) -> int:
    """Score landmarks against ground truth: NME, failure rate and AUC of the CED."""
    if a.plot:
        need("matplotlib", "plot", "--plot")      # before the work, not after it
    if a.gt_dir.is_dir() and wflw_test_lists(a.gt_dir):
        return _evaluate_wflw(a)
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
        from ..evaluation.protocols import evaluate_model

        gt, pred = evaluate_model(a.model, a.gt_dir, flip=a.flip, decoder=a.decoder, precision=a.precision)
        label = a.model + (" +flip" if a.flip else "") + (f" ({a.decoder})" if a.decoder else "") + \
            (f" [{a.precision}]" if a.precision != "fp32" else "")
    if len({len(g) for g in gt}) != 1:
        raise DataError(a.gt_dir, "ground-truth files have different point counts")
    errors = nme(np.stack(pred), np.stack(gt), a.norm)
    report = summary(errors, a.norm, a.threshold)
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
    p.add_argument("--json", action="store_true", help="print one JSON object")


@command("evaluate-pose", _pose_args)
def _evaluate_pose(a: argparse.Namespace) -> int:
    """Head-pose MAE and large-pose landmark NME on AFLW2000-3D-style faces (faces beyond 99 degrees dropped)."""
    from ..evaluation.protocols import evaluate_pose
    from ..io.datasets import read_aflw2000

    rep = evaluate_pose(read_aflw2000(a.folder), None if a.annotations else a.model, precision=a.precision,
                        flip=a.flip)
    if a.json:
        print(json.dumps(rep))
        return 0
    m = rep["mae"]
    print(f"{rep['model'] or 'annotated landmarks'} on {a.folder}: {rep['faces']} faces ({rep['dropped']} beyond 99 degrees dropped)")
    print(f"  pose MAE (degrees)  yaw {m['yaw']:.2f}  pitch {m['pitch']:.2f}  roll {m['roll']:.2f}  mean {m['mean']:.2f}")
    for key, label in (("nme_2d", "2D re-annotation"), ("nme_3d_xy", "3D fit's x, y")):
        r = rep[key]
        bins = "  ".join(f"{k} {v * 100:.2f}%" for k, v in r.items() if "-" in k)
        print(f"  NME/box vs {label}: all {r['all'] * 100:.2f}%  {bins}  balanced {r['balanced'] * 100:.2f}%")
    if "nme_3d" in rep:
        print(f"  3D NME/box vs the 3D fit: {rep['nme_3d']['all'] * 100:.2f}%")
    return 0
