"""Why the ASM searches in 2D (issue 35): the point distribution model of faces68/train (less the quarter of HELEN held
out) searched from the mean shape with an oracle for a profile model: each point is told where its true position lies,
at most 3 px per step, (a) along its contour's normal only (Cootes' 1D profiles) or (b) in x and y; 20 steps, the
shape constrained after each. NME (inter-ocular) on the held-out HELEN quarter, 128 px crops from the landmarks' box.
    python tools/experiments/asm_search.py"""
import sys

import numpy as np

sys.path.insert(0, "tools")
from _data import helen_holdout  # noqa: E402

from facemark.core.asm import ActiveShapeModel, point_distribution  # noqa: E402
from facemark.core.boundaries import tangents  # noqa: E402
from facemark.core.crop import crop_from_landmarks  # noqa: E402
from facemark.core.schemes import scheme  # noqa: E402
from facemark.evaluation.metrics import nme  # noqa: E402

train, val = helen_holdout()
pts = np.array([crop_from_landmarks(s.landmarks, 128).to_crop(s.landmarks)[:, :2] for s in train])
mean, modes, sd = point_distribution(pts)
model = ActiveShapeModel(128, mean, modes, sd, pts.mean(axis=0), None, None, None)
ibug = scheme("ibug68")
errors = {"start": [], "normal only": [], "x and y": []}
for s in val:
    c = crop_from_landmarks(s.landmarks, 128)
    gt = c.to_crop(s.landmarks)[:, :2]
    for name in errors:
        p = model.init.copy()
        for _ in range(20 if name != "start" else 0):
            if name == "normal only":
                t = tangents(p[None], ibug)[0]
                n = np.stack([-t[:, 1], t[:, 0]], axis=1)
                p = model.constrain(p + np.clip(((gt - p) * n).sum(axis=1), -3, 3)[:, None] * n)
            else:
                p = model.constrain(p + np.clip(gt - p, -3, 3))
        errors[name].append(nme(c.to_source(p)[None], s.landmarks[None, :, :2], "iod")[0])
print({k: round(float(np.mean(v)), 4) for k, v in errors.items()}, f"{len(val)} held-out HELEN faces")
