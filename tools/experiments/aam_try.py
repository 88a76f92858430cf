"""Build an AAM on faces68/train less a quarter of its HELEN faces and score it on those (issue 35's validation
faces), or with --test on faces68/test/ytf; prints NME (inter-ocular) and ms per face.
    python tools/experiments/aam_try.py [--step 4] [--test] [--limit N]"""
import argparse
import sys
import time

import numpy as np

sys.path.insert(0, "tools")
from _data import DATA  # noqa: E402

from facemark.core.aam import build_aam  # noqa: E402
from facemark.core.crop import crop_from_landmarks  # noqa: E402
from facemark.evaluation.metrics import nme  # noqa: E402
from facemark.io.datasets import read_pts_folder  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--step", type=int, default=4)
p.add_argument("--test", action="store_true")
p.add_argument("--limit", type=int, default=0)
p.add_argument("--set", nargs="*", default=[], help="NAME=VALUE: override core.aam's settings (FRAME, LEVELS, ...)")
a = p.parse_args()
import facemark.core.aam as aam  # noqa: E402
for kv in a.set:
    k, v = kv.split("=")
    setattr(aam, k, type(getattr(aam, k))(v))
helen = read_pts_folder(DATA / "faces68" / "train" / "helen", 68)
val = helen[1::4] if not a.test else read_pts_folder(DATA / "faces68" / "test" / "ytf", 68)
val = val[:a.limit] if a.limit else val
train = [h for i, h in enumerate(helen) if i % 4 != 1]
for sub in ("afw", "ytf"):
    train += read_pts_folder(DATA / "faces68" / "train" / sub, 68)
train = train[::a.step]
crops, pts = [], []
for s in train:
    c = crop_from_landmarks(s.landmarks, 128)
    crops.append(c.warp(s.load_image()))
    pts.append(c.to_crop(s.landmarks)[:, :2])
t = time.time()
m = build_aam(crops, np.array(pts), 128)
print(f"built from {len(crops)} faces in {time.time() - t:.0f} s, {len(m.sd)} modes, "
      f"appearance components {[len(lv.a) for lv in m.levels]}, pixels {[len(lv.a0) for lv in m.levels]}")
errs, init, t = [], [], time.time()
for s in val:
    c = crop_from_landmarks(s.landmarks, 128)
    errs.append(nme(c.to_source(m.fit(c.warp(s.load_image())))[None], s.landmarks[None, :, :2], "iod")[0])
    init.append(nme(c.to_source(m.init)[None], s.landmarks[None, :, :2], "iod")[0])
print(f"{'ytf' if a.test else 'validation'}: NME {np.mean(errs):.4f} (start {np.mean(init):.4f}), "
      f"{(time.time() - t) / len(val) * 1000:.0f} ms per face")
