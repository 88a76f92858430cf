"""Build an ASM on faces68/train less a quarter of its HELEN faces and score it on those (the validation faces of
issue 35's choices), or with --test on faces68/test/ytf; prints NME (inter-ocular) and ms per face.
    python tools/experiments/asm_try.py [--step 4] [--test] [--set ITERATIONS=4 ...]"""
import argparse
import sys
import time

import numpy as np

sys.path.insert(0, "tools")
from _data import DATA  # noqa: E402

from facemark.core.asm import build_asm  # noqa: E402
from facemark.core.crop import crop_from_landmarks  # noqa: E402
from facemark.evaluation.metrics import nme  # noqa: E402
from facemark.io.datasets import read_pts_folder  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--step", type=int, default=4)
p.add_argument("--test", action="store_true")
p.add_argument("--size", type=int, default=128)
p.add_argument("--set", nargs="*", default=[], help="NAME=VALUE: override core.asm's settings (ITERATIONS, ...)")
a = p.parse_args()
import facemark.core.asm as asm  # noqa: E402
for kv in a.set:
    k, v = kv.split("=")
    setattr(asm, k, type(getattr(asm, k))(v))
helen = read_pts_folder(DATA / "faces68" / "train" / "helen", 68)
val = helen[1::4] if not a.test else read_pts_folder(DATA / "faces68" / "test" / "ytf", 68)
train = [h for i, h in enumerate(helen) if i % 4 != 1]
for sub in ("afw", "ytf"):
    train += read_pts_folder(DATA / "faces68" / "train" / sub, 68)
train = train[::a.step]
crops, pts = [], []
for s in train:
    c = crop_from_landmarks(s.landmarks, a.size)
    crops.append(c.warp(s.load_image()))
    pts.append(c.to_crop(s.landmarks)[:, :2])
t = time.time()
m = build_asm(crops, np.array(pts), a.size)
print(f"built from {len(crops)} faces in {time.time() - t:.0f} s, {len(m.sd)} modes")
errs, init, t = [], [], time.time()
for s in val:
    c = crop_from_landmarks(s.landmarks, a.size)
    errs.append(nme(c.to_source(m.fit(c.warp(s.load_image())))[None], s.landmarks[None, :, :2], "iod")[0])
    init.append(nme(c.to_source(m.init)[None], s.landmarks[None, :, :2], "iod")[0])
print(f"{'ytf' if a.test else 'validation'}: NME {np.mean(errs):.4f} (start {np.mean(init):.4f}), "
      f"{(time.time() - t) / len(val) * 1000:.0f} ms per face")
