"""Build an ASM or AAM on faces68/train less a quarter of its HELEN faces and score it on that quarter (issue 35's
validation faces; ``--test``: faces68/test/ytf instead), from the mean shape or, for the AAM, from an ASM's answer
(``--asm-start``, how aam68 ships); prints NME (inter-ocular) and ms per face. ``--set`` overrides the module's
settings (core/asm.py, core/aam.py constants) for the trial.
    python tools/experiments/classical_try.py asm|aam [--step 4] [--test] [--limit N] [--asm-start] [--set NAME=VALUE ...]"""
import argparse
import importlib
import sys
import time

import numpy as np

sys.path.insert(0, "tools")
from _data import DATA, helen_holdout  # noqa: E402

from facemark.core.crop import crop_from_landmarks  # noqa: E402
from facemark.evaluation.metrics import nme  # noqa: E402
from facemark.io.datasets import read_pts_folder  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("kind", choices=("asm", "aam"))
p.add_argument("--step", type=int, default=4)
p.add_argument("--test", action="store_true")
p.add_argument("--limit", type=int, default=0)
p.add_argument("--asm-start", action="store_true", help="aam: fit from the answer of an ASM built alongside")
p.add_argument("--set", nargs="*", default=[], help="NAME=VALUE: a setting of core.asm / core.aam for this trial")
a = p.parse_args()
module = importlib.import_module(f"facemark.core.{a.kind}")
for kv in a.set:
    k, v = kv.split("=")
    setattr(module, k, type(getattr(module, k))(v))
train, val = helen_holdout(a.step)
val = read_pts_folder(DATA / "faces68" / "test" / "ytf", 68) if a.test else val
val = val[:a.limit] if a.limit else val
crops, pts = [], []
for s in train:
    c = crop_from_landmarks(s.landmarks, 128)
    crops.append(c.warp(s.load_image()))
    pts.append(c.to_crop(s.landmarks)[:, :2])
t = time.time()
if a.kind == "asm":
    model = module.build_asm(crops, np.array(pts), 128)
else:
    from facemark.core.asm import build_asm

    starter = build_asm(crops, np.array(pts), 128) if a.asm_start else None
    model = module.build_aam(crops, np.array(pts), 128, starter=starter)
print(f"built from {len(crops)} faces in {time.time() - t:.0f} s, {len(model.sd)} modes")
errs, init, t = [], [], time.time()
for s in val:
    c = crop_from_landmarks(s.landmarks, 128)
    errs.append(nme(c.to_source(model.fit(c.warp(s.load_image())))[None], s.landmarks[None, :, :2], "iod")[0])
    init.append(nme(c.to_source(model.init)[None], s.landmarks[None, :, :2], "iod")[0])
print(f"{'ytf' if a.test else 'validation'}: NME {np.mean(errs):.4f} (mean shape {np.mean(init):.4f}), "
      f"{(time.time() - t) / len(val) * 1000:.0f} ms per face")
