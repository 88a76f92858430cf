"""The visibility check of issue 33 on validation faces: faces68/test/ytf and the even half of faces3d/aflw2000,
each cropped from its annotated landmarks' box: mean visibility on the clean faces, and with a grey rectangle
over the mouth the AUC of the brow/nose/eye points' visibility against the mouth points'
(``evaluation.visibility``); on AFLW2000-3D also the self-occlusion its fitted 3D points' own mesh labels, the
mouth AUC against the upper points that mesh leaves in sight, and the mouth AUC by yaw band.

    python tools/visibility_check.py [--model hrnet68_pose] [--precision fp32] > docs/runs/visibility_hrnet68_pose.json
    python tools/visibility_check.py --labels > docs/runs/visibility_labels.json

``--labels`` instead compares the two kinds of self-occlusion labels by yaw band: the share of each region's
points hidden on AFLW2000-3D's even half (``core.mesh.self_occlusion`` of its fitted 3D points, by its annotated
yaw) and on training faces (HELEN, the first 300) turned by face profiling as training turns them
(``training.profile``, yaw of the turned points by the shape-model fit).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from facemark.evaluation.visibility import self_occlusion_report, visibility_report
from facemark.inference.runtime import DEFAULT_MODEL, OnnxLandmarkModel
from facemark.io.datasets import FaceSample, read_pts_folder

from _data import DATA, aflw2000_half


BANDS = ((0, 30), (30, 45), (45, 60), (60, 99))


def hidden_by_band(yaws: np.ndarray, seen: np.ndarray, regions: dict) -> dict:
    """The share of each region's points hidden, per yaw band."""
    return {f"{lo}-{hi}": {"faces": int(m.sum()), **{name: round(float(1 - seen[m][:, list(idx)].mean()), 3)
                                                     for name, idx in regions.items()}}
            for lo, hi in BANDS if (m := (np.abs(yaws) >= lo) & (np.abs(yaws) < hi)).any()}


def label_report() -> dict:
    """``--labels``: the hidden shares of AFLW2000-3D's labels and of profiled training faces, by yaw band."""
    from facemark.core.crop import crop_from_landmarks
    from facemark.core.mesh import self_occlusion
    from facemark.core.pose import euler_from_rotation
    from facemark.core.schemes import scheme
    from facemark.training.profile import lift, profile, turn_for

    regions = scheme("ibug68").regions
    posed = aflw2000_half("even", poses=True)
    aflw = hidden_by_band(np.array([s.pose["yaw"] for s in posed]),
                          np.array([self_occlusion(s.landmarks_3d) for s in posed]), regions)
    rng, yaws, seen = np.random.default_rng(0), [], []
    for s in read_pts_folder(DATA / "faces68" / "train" / "helen", 68)[:300]:
        crop = crop_from_landmarks(s.landmarks, 256)
        pts = crop.to_crop(s.landmarks)
        fit = lift(pts)
        _, turned, visible = profile(crop.warp(s.load_image()), pts, turn_for(pts, rng, 60.0, fit=fit), 0.0, fit)
        yaws.append(euler_from_rotation(lift(turned).rotation[0])[0])
        seen.append(visible)
    return {"aflw2000_even_3d_labels": aflw,
            "profiled_training_faces": hidden_by_band(np.array(yaws), np.array(seen), regions)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    ap.add_argument("--labels", action="store_true", help="compare the self-occlusion labels instead (no model)")
    a = ap.parse_args()
    if a.labels:
        print(json.dumps(label_report(), indent=1))
        return
    model = OnnxLandmarkModel(a.model, precision=a.precision, threads=2)
    sets = {"faces68/test/ytf": read_pts_folder(DATA / "faces68" / "test" / "ytf", 68),
            "aflw2000 even half": aflw2000_half("even")}
    posed = aflw2000_half("even", poses=True)
    bands = {f"{lo}-{hi}": [s for s in posed if lo <= abs(s.pose["yaw"]) < hi] for lo, hi in ((0, 30), (30, 60), (60, 99))}
    report = {"model": a.model, "precision": a.precision,
              "sets": {name: visibility_report(model, faces) for name, faces in sets.items()},
              "aflw2000_even_self_occlusion": self_occlusion_report(model, posed),
              "aflw2000_even_mouth_auc_by_yaw": {
                  band: visibility_report(model, [FaceSample(s.image, s.landmarks) for s in faces])["mouth_covered"]["auc"]
                  for band, faces in bands.items()}}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
