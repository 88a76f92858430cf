"""Fit a model's per-point uncertainty calibration (``core.uncertainty``) on validation faces and, with
``--write``, store it in the model's card, where ``Face.uncertainty`` and ``Face.quality`` read it.

Validation faces only, each cropped from its annotated landmarks' box: faces68/test/ytf (frontal) and the even
half of faces3d/aflw2000 (large poses, its 2D re-annotation; the held-out half is the other one). Printed per
set: the calibration ratio (mean actual / mean expected error), the rank correlation of each face's expected
and actual NME (inter-ocular on ytf, over the box size on AFLW2000), the error-reject curve; and the same with
the calibration fitted on the other set alone (how far it carries to faces it did not see).

    python tools/calibrate_uncertainty.py --model hrnet68_pose [--write] > docs/runs/uncertainty_hrnet68_pose.json
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from facemark.core.crop import crop_from_landmarks
from facemark.core.uncertainty import fit_calibration, spearman
from facemark.evaluation.metrics import uncertainty_report
from facemark.inference.runtime import DEFAULT_MODEL, OnnxLandmarkModel, load_card
from facemark.io.datasets import FaceSample, read_pts_folder
from facemark.io.images import read_image

from _data import DATA, aflw2000_half


def collect(model: OnnxLandmarkModel, faces: list[FaceSample]) -> dict[str, np.ndarray]:
    """Per face: features (N, 2), predictions and ground truth in crop pixels, crop scale."""
    feats, pred, gt = [], [], []
    for i in range(0, len(faces), 64):
        part = faces[i:i + 64]
        crops = [crop_from_landmarks(s.landmarks, model.input_size) for s in part]
        pixels = np.stack([c.warp(read_image(s.image)) for c, s in zip(crops, part)])
        feats.append(model.features(pixels))
        pred.append(model(pixels))
        gt.append(np.stack([c.to_crop(s.landmarks)[:, :2] for c, s in zip(crops, part)]))
    return {"features": np.concatenate(feats), "pred": np.concatenate(pred), "gt": np.concatenate(gt)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--write", action="store_true", help="store the calibration in the model's card")
    a = ap.parse_args()
    model = OnnxLandmarkModel(a.model, precision="fp32", threads=2)
    if model.codec.point_features(np.zeros((1, model.scheme.n_points, 4, 4), np.float32)) is None:
        raise SystemExit(f"{a.model}: its codec gives no per-point features")
    aflw = aflw2000_half("even")
    sets = {"faces68/test/ytf": collect(model, read_pts_folder(DATA / "faces68" / "test" / "ytf", 68)),
            "aflw2000 even half": collect(model, aflw)}
    for name, d in sets.items():
        gt = d["gt"]
        d["norm"] = (np.linalg.norm(gt[:, 36] - gt[:, 45], axis=1) if "ytf" in name
                     else np.sqrt(np.prod(np.ptp(gt, axis=1), axis=1)))
        d["errors"] = np.linalg.norm(d["pred"][..., :2] - gt, axis=-1)
    both = fit_calibration(np.concatenate([d["features"] for d in sets.values()]),
                           np.concatenate([d["errors"] for d in sets.values()]))
    report = {"model": a.model, "calibration": both.to_card(), "sets": {}}
    for name, d in sets.items():
        other = next(v for k, v in sets.items() if k != name)
        alone = fit_calibration(other["features"], other["errors"])
        report["sets"][name] = {
            "fitted_on_both": uncertainty_report(both.expected_error(d["features"]), d["pred"], d["gt"], d["norm"]),
            "fitted_on_the_other": uncertainty_report(alone.expected_error(d["features"]), d["pred"], d["gt"],
                                                      d["norm"])}
    expected = np.concatenate([both.expected_error(d["features"]).mean(axis=1) / d["norm"] for d in sets.values()])
    actual = np.concatenate([d["errors"].mean(axis=1) / d["norm"] for d in sets.values()])
    report["spearman_both_sets"] = spearman(expected, actual)
    print(json.dumps(report, indent=1))
    if a.write:
        card, onnx = load_card(a.model)
        path = onnx.with_suffix(".json")
        meta = dict(card.meta)
        meta["uncertainty"] = {**both.to_card(), "fitted_on": list(sets),
                               "command": f"python tools/calibrate_uncertainty.py --model {a.model} --write"}
        path.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"wrote the calibration into {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
