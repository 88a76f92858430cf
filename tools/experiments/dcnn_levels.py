"""Issue 35: each level of the trained DCNN cascade on faces5's 2,995 test faces (crops from the ground-truth
points, as it was trained), NME over the eye centres' distance and failure rate at 10%: what levels 2 and 3 add.
The ONNX file is rebuilt into its torch model (``training.from_onnx``) to read every level's points.
    python tools/experiments/dcnn_levels.py checkpoints/zoo/dcnn5.onnx > docs/runs/dcnn5_levels.jsonl"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "tools")
from _data import DATA  # noqa: E402

from facemark.core.codecs import RegressionCodec  # noqa: E402
from facemark.core.crop import apply_affine, crop_from_landmarks, to_input  # noqa: E402
from facemark.io.datasets import read_mtfl  # noqa: E402
from facemark.training.config import ModelSpec  # noqa: E402
from facemark.training.from_onnx import load_onnx_weights  # noqa: E402
from facemark.training.models import MODELS  # noqa: E402

faces = read_mtfl(DATA / "faces5" / "new_testing.txt", DATA / "faces5")
crops = [crop_from_landmarks(s.landmarks[:, :2], 80) for s in faces]
x = torch.from_numpy(to_input(np.stack([c.warp(s.load_image()) for c, s in zip(crops, faces)])))
truth = np.stack([apply_affine(c.matrix(), s.landmarks[:, :2]) for c, s in zip(crops, faces)])
model = MODELS.build("dcnn", spec=ModelSpec("five", 5, 2, 80, {"name": "cascade", "heatmaps": False}))
load_onnx_weights(model, Path(sys.argv[1]), x[:64])
with torch.no_grad():
    steps = model.eval().forward_train(x)["steps"]
iod = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)
for level, s in enumerate(steps, 1):
    err = np.linalg.norm(RegressionCodec(80, 5).decode(s.numpy()) - truth, axis=2).mean(1) / iod
    print(json.dumps({"model": Path(sys.argv[1]).stem, "level": level, "n": len(err), "nme": float(err.mean()),
                      "fr": float(np.mean(err > 0.1)), "norm": "eye centres", "threshold": 0.1}))
