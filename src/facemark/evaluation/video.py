"""Video benchmark: moving-face clips with exact ground truth, made from any annotated face, and the measures
of a landmark track: frames found, NME, jitter and lag; on real clips without ground truth, the second
difference of the points.

A synthetic clip pastes one annotated face (its photo under a soft elliptical mask) on a smooth random colour
background and moves it by a smooth random similarity (translation, scale, rotation: a few slow sinusoids and
one fast sweep), adds sensor noise to every frame and passes the frames through an mp4 encoder; the ground
truth is the annotation moved by the same similarity. A still clip holds the face in place (only the noise is
new in each frame).

- found: share of frames with a face whose points' centre lies in the ground truth's landmark box;
- NME: mean point error over the inter-ocular distance (outer eye corners), on found frames;
- jitter: mean change of each point's error vector from one frame to the next, over the inter-ocular distance:
  what a viewer sees shake (a constant error does not count);
- lag: the delay (frames, then ms) that best aligns the predicted face centre's path with the ground truth's;
- second difference: mean |p[t+1] - 2 p[t] + p[t-1]| over the inter-ocular distance, for clips without
  ground truth (shake and true acceleration together: meaningful on calm clips).
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from ..core.crop import landmark_box
from ..io.datasets import FaceSample
from ..io.video import Source, fps as rate, frames as read

EYES = (36, 45)   # iBUG-68 outer eye corners


@dataclass
class Clip:
    """A synthetic clip: RGB frames, (T, N, 2) ground truth, frame rate."""

    name: str
    frames: list[np.ndarray]
    truth: np.ndarray
    fps: float


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    low = rng.uniform(30, 225, (6, 8, 3)).astype(np.float32)
    bg = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return bg + rng.normal(0, 6, (h, w, 3)).astype(np.float32)


def _motion(rng: np.random.Generator, n: int, fps: float, still: bool) -> np.ndarray:
    """(n, 4) per frame: dx, dy (fractions of the frame), log scale, angle (degrees)."""
    if still:
        return np.zeros((n, 4))
    t = np.arange(n) / fps
    out = np.zeros((n, 4))
    amp = (0.12, 0.08, 0.15, 10.0)
    for k in range(4):
        for _ in range(3):
            f, ph = rng.uniform(0.05, 0.4), rng.uniform(0, 2 * np.pi)
            out[:, k] += amp[k] / 3 * np.sin(2 * np.pi * f * t + ph)
    # one fast sweep (a head turn of the camera): 0.25 of the frame in about half a second
    start, dur = rng.uniform(0.3, 0.6) * t[-1], 0.5
    ramp = np.clip((t - start) / dur, 0, 1)
    out[:, 0] += 0.25 * (0.5 - 0.5 * np.cos(np.pi * ramp)) * rng.choice([-1, 1])
    return out


def make_clip(sample: FaceSample, rng: np.random.Generator, frames: int = 90, fps: float = 25.0,
              size: tuple[int, int] = (640, 480), face: float = 130.0, noise: float = 4.0, still: bool = False,
              name: str = "") -> Clip:
    """A moving-face clip of ``sample`` (see the module docstring); ``face`` is the landmark box's side in
    pixels at scale 1."""
    w, h = size
    image = sample.load_image().astype(np.float32)
    pts = sample.landmarks[:, :2].astype(np.float64)
    box = landmark_box(pts)
    centre, side = (box[:2] + box[2:]) / 2, max(box[2] - box[0], box[3] - box[1])
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1] - 0.1 * side)), (int(0.75 * side), int(0.95 * side)), 0, 0, 360,
                1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.08 * side)[..., None]
    bg = _background(rng, w, h)
    path = _motion(rng, frames, fps, still)
    base = face / side
    out, truth = [], []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        for dx, dy, ls, angle in path:
            m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), base * float(np.exp(ls)))
            m[:, 2] += np.array([w / 2 + dx * w, h / 2 + dy * h]) - centre
            face_px = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
            frame = alpha * face_px + (1 - alpha) * bg + rng.normal(0, noise, (h, w, 3))
            frame = np.clip(frame, 0, 255).astype(np.uint8)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            truth.append(pts @ m[:, :2].T + m[:, 2])
        writer.release()
        cap = cv2.VideoCapture(str(video))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        cap.release()
    if len(out) != frames:
        raise RuntimeError(f"the mp4 encoder returned {len(out)} of {frames} frames")
    return Clip(name or sample.image.stem, out, np.array(truth), fps)


def pick(found: list[np.ndarray], truth: np.ndarray) -> np.ndarray | None:
    """The found face (points (N, 2)) whose centre lies in the ground truth's landmark box, nearest its
    centre; None if there is none."""
    box = landmark_box(truth)
    centre = truth.mean(axis=0)
    mid = [np.nanmean(f[:, :2], axis=0) for f in found]    # a tool's unmapped points are NaN
    inside = [(f, m) for f, m in zip(found, mid) if box[0] <= m[0] <= box[2] and box[1] <= m[1] <= box[3]]
    return min(inside, key=lambda fm: float(np.linalg.norm(fm[1] - centre)), default=(None,))[0]


def clip_scores(pred: list[np.ndarray | None], truth: np.ndarray, fps: float,
                points: tuple[int, ...] | None = None) -> dict:
    """found, NME, jitter (both as fractions of the inter-ocular distance) and lag (frames and ms) of one
    clip's predictions (None where no face was found), on ``points`` (default all)."""
    sel = list(points) if points is not None else list(range(truth.shape[1]))
    iod = np.linalg.norm(truth[:, EYES[0]] - truth[:, EYES[1]], axis=1)
    ok = np.array([p is not None for p in pred])
    err = np.full((len(pred), len(sel), 2), np.nan)
    for k, p in enumerate(pred):
        if p is not None:
            err[k] = p[sel, :2] - truth[k, sel]
    nme = np.linalg.norm(err, axis=2).mean(axis=1) / iod
    both = ok[1:] & ok[:-1]
    jit = np.linalg.norm(err[1:] - err[:-1], axis=2).mean(axis=1) / iod[1:]
    known = lambda v: None if v is None or not np.isfinite(v) else float(v)   # noqa: E731  (a tool lacks the point)
    return {"frames": len(pred), "found": float(ok.mean()), "nme": known(nme[ok].mean()) if ok.any() else None,
            "jitter": known(jit[both].mean()) if both.any() else None, **_lag(pred, truth, sel, fps)}


def _lag(pred: list[np.ndarray | None], truth: np.ndarray, sel: list[int], fps: float) -> dict:
    """The delay d (frames, 0.05 steps in [-2, 6]) minimising the mean distance between the predicted
    centre at t and the true centre at t - d (linear interpolation between frames)."""
    ok = np.array([p is not None for p in pred])
    if ok.sum() < 10:
        return {"lag_frames": None, "lag_ms": None}
    t = np.arange(len(pred), dtype=np.float64)
    got = np.array([np.nanmean(p[sel, :2], axis=0) if p is not None else (np.nan, np.nan) for p in pred])
    true = truth[:, sel].mean(axis=1)
    best, best_d = np.inf, 0.0
    for d in np.arange(-2.0, 6.0001, 0.05):
        s = t - d
        valid = ok & (s >= 0) & (s <= len(pred) - 1)
        if valid.sum() < 10:
            continue
        ref = np.column_stack([np.interp(s[valid], t, true[:, 0]), np.interp(s[valid], t, true[:, 1])])
        cost = float(np.linalg.norm(got[valid] - ref, axis=1).mean())
        if cost < best:
            best, best_d = cost, float(d)
    return {"lag_frames": round(best_d, 2), "lag_ms": round(1000 * best_d / fps, 1)}


def second_difference(points: list[np.ndarray | None], sel: list[int] | None = None) -> float | None:
    """Mean |p[t+1] - 2 p[t] + p[t-1]| over the inter-ocular distance of p[t], on runs of three found frames."""
    vals = []
    for a, b, c in zip(points, points[1:], points[2:]):
        if a is None or b is None or c is None:
            continue
        s = sel if sel is not None else list(range(b.shape[0]))
        iod = np.linalg.norm(b[EYES[0], :2] - b[EYES[1], :2])
        vals.append(np.linalg.norm(c[s, :2] - 2 * b[s, :2] + a[s, :2], axis=1).mean() / iod)
    return float(np.mean(vals)) if vals else None


def follow(found: list[list[np.ndarray]]) -> list[np.ndarray | None]:
    """One face through a clip without ground truth: the first frame's first face, then in each frame the face
    nearest the last one followed (None where a frame has none)."""
    out: list[np.ndarray | None] = []
    last = None
    for faces in found:
        if faces:
            centre = lambda f: np.nanmean(f[:, :2], axis=0)   # noqa: E731  (a tool's unmapped points are NaN)
            near = lambda f: float(np.linalg.norm(centre(f) - centre(last)))   # noqa: E731
            last = faces[0] if last is None else min(faces, key=near)
        out.append(last if faces else None)
    return out


def summarise(rows: list[dict]) -> dict:
    """Mean of each measure over clips (lag over moving clips only), found as the mean share."""
    keys = ("found", "nme", "jitter", "lag_ms")
    return {k: float(np.mean([r[k] for r in rows if r.get(k) is not None])) if any(r.get(k) is not None for r in rows)
            else None for k in keys} | {"clips": len(rows)}


Method = Callable[[Iterable[np.ndarray], float], list[list[np.ndarray]]]


def facemark_methods(lm, tracked_settings: dict | None = None) -> dict[str, Method]:
    """facemark per frame (the detector on every frame, as for photos) and tracked (``Landmarker.track``); each
    also formats its faces as ``detect --json`` does, so timings include the pose fit and the JSON."""

    def per_frame(frames: Iterable[np.ndarray], fps: float) -> list[list[np.ndarray]]:
        out = []
        for image in frames:
            faces = lm.detect(image)
            json.dumps([f.to_dict() for f in faces])
            out.append([f.landmarks for f in faces])
        return out

    def tracked(frames: Iterable[np.ndarray], fps: float) -> list[list[np.ndarray]]:
        out = []
        for faces in lm.track(frames, fps, **(tracked_settings or {})):
            json.dumps([f.to_dict() for f in faces])
            out.append([f.landmarks for f in faces])
        return out

    return {"facemark per frame": per_frame, "facemark tracked": tracked}


def synthetic_scores(methods: dict[str, Method], samples: list[FaceSample], moving: int = 12, still: int = 2,
                     frames: int = 90, seed: int = 0, points: tuple[int, ...] | None = None) -> dict:
    """Each method on ``moving`` moving and ``still`` still clips made from faces drawn (by ``seed``) from
    ``samples``: per clip and averaged, on all points and on ``points`` (those another tool shares)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(samples), moving + still, replace=len(samples) < moving + still)
    rows: dict[str, dict[str, list]] = {name: {"moving": [], "still": []} for name in methods}
    for k, i in enumerate(chosen):
        clip = make_clip(samples[i], rng, frames=frames, still=k >= moving)
        kind = "still" if k >= moving else "moving"
        for name, method in methods.items():
            found = method(clip.frames, clip.fps)
            pred = [pick(f, g) for f, g in zip(found, clip.truth)]
            row = {"clip": clip.name, **clip_scores(pred, clip.truth, clip.fps)}
            if points is not None:
                shared = clip_scores(pred, clip.truth, clip.fps, points)
                row.update({f"{k}_shared": shared[k] for k in ("nme", "jitter")})
            if kind == "still":
                row["lag_ms"] = row["lag_frames"] = None   # nothing moves: no lag to measure
            rows[name][kind].append(row)
    out = {}
    for name, r in rows.items():
        out[name] = {kind: {**summarise(v), **({f"{k}_shared": float(np.mean([x[f"{k}_shared"] for x in v]))
                                                for k in ("nme", "jitter")} if points is not None and v else {})}
                     for kind, v in r.items()}
        out[name]["clips"] = r
    return out


def real_scores(methods: dict[str, Method], clips: list[Path], points: tuple[int, ...] | None = None) -> dict:
    """Each method on real clips without ground truth: the second difference of the followed face's points
    (on ``points`` where given), frames found and wall time (decoding included: each method reads the file)."""
    out: dict[str, dict] = {}
    for name, method in methods.items():
        per_clip, total_s, total_frames = [], 0.0, 0
        for path in clips:
            src = Source(path, Path(path.name), "video")
            t0 = time.perf_counter()
            found = method((image for _, image in read(src)), rate(src))
            seconds = time.perf_counter() - t0
            faces = follow(found)
            per_clip.append({"clip": path.name, "frames": len(found),
                             "found": float(np.mean([f is not None for f in faces])),
                             "second_difference": second_difference(faces, list(points) if points else None),
                             "seconds": round(seconds, 3)})
            total_s += seconds
            total_frames += len(found)
        out[name] = {"clips": per_clip, "seconds": round(total_s, 2), "frames": total_frames,
                     "ms_per_frame": round(1000 * total_s / max(total_frames, 1), 2)}
    return out
