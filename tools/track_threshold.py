"""Choose the tracker's lost-track threshold (``inference.tracker.LOST_BELOW``) from a model's own confidence
(``OnnxLandmarkModel.scored``: the mean heatmap peak) on crops with and without a face, none of them test faces.

- faces: training faces (faces68/train: helen and ytf) and the validation half of faces3d/aflw2000 (large
  poses), each framed from its landmarks with the error a tracker's framing has (shift +-15% of the crop,
  side x0.9-1.3, turned +-20 degrees);
- background: random squares of the Roboflow training photos that hold no face;
- drifted: a training face's crop moved 0.75-1 crop side off it (a track that lost its face).

The threshold is the lowest value that at most 1% of the background and of the drifted crops reach; the
share of faces below it is printed beside it.

    python tools/track_threshold.py [--model hrnet68_pose] > docs/runs/track_threshold.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from facemark.core.crop import Crop, crop_from_landmarks
from facemark.io.datasets import read_aflw2000, read_pts_folder
from facemark.io.images import read_image
from facemark.inference.runtime import DEFAULT_MODEL, OnnxLandmarkModel

from _data import DATA


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--faces", type=int, default=300, help="faces from each face set")
    a = ap.parse_args()
    model = OnnxLandmarkModel(a.model, precision="fp32", threads=1)
    rng = np.random.default_rng(0)
    size = model.input_size
    aflw = sorted(read_aflw2000(DATA / "faces3d" / "aflw2000"), key=lambda s: s.image.name)
    aflw = [s for s in aflw if max(abs(v) for v in s.pose.values()) <= 99][0::2]
    sets = {"helen": read_pts_folder(DATA / "faces68/train/helen", 68)[:a.faces],
            "ytf": read_pts_folder(DATA / "faces68/train/ytf", 68)[:a.faces], "aflw2000_even": aflw[:a.faces]}
    crops: dict[str, list[np.ndarray]] = {}
    for name, faces in sets.items():
        crops[name] = []
        for s in faces:
            c = crop_from_landmarks(s.landmarks, size)
            c = Crop(c.cx + rng.uniform(-.15, .15) * c.side, c.cy + rng.uniform(-.15, .15) * c.side,
                     c.side * rng.uniform(.9, 1.3), size, rng.uniform(-20, 20))
            crops[name].append(c.warp(read_image(s.image)))
    crops["background"] = []
    root = DATA / "detect/roboflow_faces/train"
    for label in sorted((root / "labels").glob("*.txt")):
        image = read_image(root / "images" / f"{label.stem}.jpg")
        h, w = image.shape[:2]
        if label.stat().st_size or min(h, w) < 60:
            continue
        for _ in range(3):
            side = rng.uniform(40, min(h, w))
            crops["background"].append(Crop(rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2),
                                            side, size).warp(image))
    crops["drifted"] = []
    for s in sets["helen"] + sets["ytf"]:
        c = crop_from_landmarks(s.landmarks, size)
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(.75, 1.0) * c.side
        crops["drifted"].append(Crop(c.cx + dist * np.cos(angle), c.cy + dist * np.sin(angle), c.side, size)
                                .warp(s.load_image()))
    conf = {k: np.concatenate([model.scored(np.stack(v[i:i + 64]))[1] for i in range(0, len(v), 64)])
            for k, v in crops.items()}
    threshold = float(max(np.quantile(conf["background"], 0.99), np.quantile(conf["drifted"], 0.99)))
    print(json.dumps({
        "model": a.model, "threshold": round(threshold, 3),
        "percentiles_1_5_50_95_99": {k: np.percentile(v, [1, 5, 50, 95, 99]).round(3).tolist()
                                     for k, v in conf.items()},
        "below_threshold": {k: round(float(np.mean(v < threshold)), 4) for k, v in conf.items()},
        "counts": {k: len(v) for k, v in conf.items()}}, indent=1))


if __name__ == "__main__":
    main()
