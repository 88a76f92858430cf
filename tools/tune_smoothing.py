"""Choose the tracker's smoothing settings (``core.smoothing.MOTION`` and ``SHAPE``) on validation clips: never
the test faces.

- synthetic clips (``evaluation.video.make_clip``) made from training faces (faces68/train): moving ones (NME,
  jitter, lag) and still ones (jitter);
- the real talking-head clips of ../shared/data/video (validation only): how much of the mouth's motion
  survives (the standard deviation of the inner-lip gap, smoothed over raw: a filter that smooths the shape too
  much flattens speech) and the second difference.

The tracker frames each crop by the raw (unsmoothed) points, so the smoothing does not change what the model
sees: each clip is tracked once without smoothing and every setting filters those points. The rule, written
before the grid was run: among the settings whose moving-clip NME is no worse than the unsmoothed tracker's,
whose mean lag is at most 20 ms (half a frame at 25 fps) and whose real clips keep at least 90% of the mouth's
motion, take the one with the least jitter (moving and still clips averaged). A per-point One Euro filter
(the classic use) is scored beside it.

    python tools/tune_smoothing.py > docs/runs/smoothing_grid.jsonl
"""
from __future__ import annotations

import argparse
import itertools
import json

import numpy as np

from facemark.core.smoothing import EuroSettings, FaceSmoother, OneEuroFilter
from facemark.evaluation.video import clip_scores, make_clip, pick, second_difference
from facemark.inference.landmarker import Landmarker
from facemark.io.datasets import read_pts_folder
from facemark.io.video import Source, fps, frames

from _data import DATA

MOTIONS = [EuroSettings(m, b, d) for m, b, d in itertools.product((0.5, 1.0, 2.0), (30.0, 100.0, 300.0), (1.0, 2.0))]
SHAPES = [EuroSettings(m, b) for m, b in itertools.product((0.3, 0.5, 1.0), (10.0, 30.0, 100.0))]


class PerPoint:
    """The classic use: one One Euro filter per point (speed in inter-ocular distances per second)."""

    def __init__(self, s: EuroSettings) -> None:
        self.f = OneEuroFilter(s.min_cutoff, s.beta, s.d_cutoff)

    def __call__(self, p: np.ndarray, t: float) -> np.ndarray:
        return self.f(p, t, scale=float(np.linalg.norm(p[36, :2] - p[45, :2])))


def _filtered(raw: list[np.ndarray | None], rate: float, make) -> list[np.ndarray | None]:
    f, out = make(), []
    for k, p in enumerate(raw):
        out.append(None if p is None else f(p, k / rate))
    return out


def _mouth(points: list[np.ndarray | None]) -> np.ndarray:
    return np.array([np.linalg.norm(p[62] - p[66]) / np.linalg.norm(p[36] - p[45]) for p in points if p is not None])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moving", type=int, default=10)
    ap.add_argument("--still", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    lm = Landmarker(threads=1)
    faces = [s for part in ("helen", "afw", "ytf") for s in read_pts_folder(DATA / "faces68" / "train" / part, 68)]
    rng = np.random.default_rng(a.seed)
    synthetic = []
    for k, i in enumerate(rng.choice(len(faces), a.moving + a.still, replace=False)):
        clip = make_clip(faces[i], rng, frames=75, still=k >= a.moving)
        raw = [pick([f.landmarks for f in found], g)
               for found, g in zip(lm.track(clip.frames, clip.fps, smooth=False), clip.truth)]
        synthetic.append((clip, raw, k >= a.moving))
    real = []
    for path in sorted((DATA / "video").glob("*.mp4")):
        src = Source(path, path, "video")
        rate = fps(src)
        raw = [f[0].landmarks if f else None for f in lm.track((im for _, im in frames(src)), rate, smooth=False)]
        real.append((rate, raw))

    def score(name: str, make) -> dict:
        rows = {"moving": [], "still": []}
        for clip, raw, still in synthetic:
            scores = clip_scores(_filtered(raw, clip.fps, make), clip.truth, clip.fps)
            rows["still" if still else "moving"].append(scores)
        kept, sd = [], []
        for rate, raw in real:
            out = _filtered(raw, rate, make)
            kept.append(_mouth(out).std() / _mouth(raw).std())
            sd.append(second_difference(out) / second_difference(raw))
        m = rows["moving"]
        return {"setting": name, "nme": float(np.mean([r["nme"] for r in m])),
                "jitter_moving": float(np.mean([r["jitter"] for r in m])),
                "jitter_still": float(np.mean([r["jitter"] for r in rows["still"]])),
                "lag_ms": float(np.mean([r["lag_ms"] for r in m])), "mouth_kept": float(np.mean(kept)),
                "second_difference_ratio": float(np.median(sd))}

    base = score("unsmoothed", lambda: (lambda p, t: p))
    print(json.dumps(base), flush=True)
    rows = []
    for s in SHAPES:
        r = score(f"per point {s}", lambda: PerPoint(s))
        print(json.dumps(r), flush=True)
    for motion, shape in itertools.product(MOTIONS, SHAPES):
        r = score(f"motion {motion} shape {shape}", lambda: FaceSmoother((36, 45), motion, shape))
        r["motion"], r["shape"] = motion.__dict__, shape.__dict__
        rows.append(r)
        print(json.dumps(r), flush=True)
    ok = [r for r in rows if r["nme"] <= base["nme"] and r["lag_ms"] <= 20 and r["mouth_kept"] >= 0.9]
    best = min(ok, key=lambda r: r["jitter_moving"] + r["jitter_still"]) if ok else None
    print(json.dumps({"chosen": best}))


if __name__ == "__main__":
    main()
