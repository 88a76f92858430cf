"""The visibility check of issue 33 on validation faces: faces68/test/ytf and the even half of faces3d/aflw2000,
each cropped from its annotated landmarks' box: mean visibility on the clean faces, and with a grey rectangle
over the mouth the AUC of the brow/nose/eye points' visibility against the mouth points'
(``evaluation.visibility``); on AFLW2000-3D also the self-occlusion its fitted 3D points' own mesh labels, and
the mouth AUC against the upper points that mesh leaves in sight.

    python tools/visibility_check.py [--model hrnet68_pose] [--precision fp32] > docs/runs/visibility_hrnet68_pose.json
"""
from __future__ import annotations

import argparse
import json

from facemark.evaluation.visibility import self_occlusion_report, visibility_report
from facemark.inference.runtime import DEFAULT_MODEL, OnnxLandmarkModel
from facemark.io.datasets import read_pts_folder

from _data import DATA, aflw2000_half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    a = ap.parse_args()
    model = OnnxLandmarkModel(a.model, precision=a.precision, threads=2)
    sets = {"faces68/test/ytf": read_pts_folder(DATA / "faces68" / "test" / "ytf", 68),
            "aflw2000 even half": aflw2000_half("even")}
    report = {"model": a.model, "precision": a.precision,
              "sets": {name: visibility_report(model, faces) for name, faces in sets.items()},
              "aflw2000_even_self_occlusion": self_occlusion_report(model, aflw2000_half("even", poses=True))}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
