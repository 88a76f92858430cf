"""Training data: faces decoded once into cached pre-crops, then augmented per batch in memory.

A pre-crop is a square around the landmarks, ``precrop_margin`` times larger than the model's crop, so the
model crop can be shifted, scaled and rotated inside it without leaving real pixels.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..core.crop import CROP_SCALE, Crop, crop_from_landmarks, to_input
from ..core.points import xy
from ..core.pose import head_poses, lift_3d
from ..core.schemes import Scheme
from ..core.shape3d import ANNOTATED
from ..io.datasets import WFLW_ATTRIBUTES, FaceSample, load_dataset
from .config import AugmentConfig
from .engine import Shard
from .profile import lift, profile, turn_for


@dataclass
class CropSet:
    """Pre-cropped faces: images (M, P, P, 3) uint8, landmarks (M, N, D) in pre-crop pixels."""

    images: np.ndarray
    landmarks: np.ndarray
    margin: float

    @property
    def face_side(self) -> float:
        """Side of the model crop inside a pre-crop, in pre-crop pixels."""
        return self.images.shape[1] / self.margin

    def __len__(self) -> int:
        return len(self.images)

    def landmarks_in_crop(self, size: int | None = None) -> np.ndarray:
        """Landmarks in the un-jittered model crop of side ``size`` (default: the crop's own pixels)."""
        side = self.face_side
        size = size or int(round(side))
        centre = (self.images.shape[1] - 1) / 2.0
        out = (self.landmarks - centre) * (size / side) + (size - 1) / 2.0
        out[..., 2:] = self.landmarks[..., 2:] * (size / side)   # depth scales, with no centre to move
        return out.astype(np.float32)


def precrop(sample: FaceSample, size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A face's cached pre-crop (``size`` px, ``margin`` x the model crop) and its landmarks in it."""
    crop = crop_from_landmarks(sample.landmarks, size, CROP_SCALE * margin)
    return crop.warp(sample.load_image()), crop.to_crop(sample.landmarks)


def build_cropset(samples: list[FaceSample], size: int, margin: float, cache_dir: Path | None = None,
                  threads: int = 2) -> CropSet:
    """Decode and pre-crop every sample (cached as .npz keyed by the files, landmarks and parameters)."""
    h = hashlib.sha256(repr(([str(s.image) for s in samples], size, margin)).encode())
    for s in samples:
        h.update(np.ascontiguousarray(s.landmarks, dtype=np.float64).tobytes())
    key = h.hexdigest()[:16]
    cache = cache_dir / f"crops-{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            return CropSet(z["images"], z["landmarks"], margin)
    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(lambda s: precrop(s, size, margin), samples))
    cs = CropSet(np.stack([d[0] for d in done]), np.stack([d[1] for d in done]).astype(np.float32), margin)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp.npz")   # one per process under torchrun
        np.savez(tmp, images=cs.images, landmarks=cs.landmarks)
        tmp.replace(cache)
    return cs


def load_datasets(root: Path, specs: list, n_points: int) -> list[FaceSample]:
    """All faces of the datasets a config lists (see readers.load_dataset)."""
    return [s for spec in specs for s in load_dataset(spec, root, n_points)]


def lift_samples(samples: list[FaceSample]) -> list[FaceSample]:
    """Pseudo-3D labels for 3D training: 2D-annotated iBUG-68 faces get the depth of their shape-model fit
    (``core.pose.lift_3d``); faces with 3D points keep them."""
    flat = [s for s in samples if s.landmarks.shape[-1] == 2]
    if not flat:
        return samples
    lifted = iter(lift_3d(np.stack([s.landmarks for s in flat])))
    return [replace(s, landmarks=next(lifted)) if s.landmarks.shape[-1] == 2 else s for s in samples]


# --- rare-class weights (PFLD) -------------------------------------------------------------------------------

DERIVED_CLASSES = ("large_yaw", "large_pitch", "large_roll", "mouth_open")


def face_classes(samples: list[FaceSample], layout: Scheme) -> tuple[list[str], np.ndarray]:
    """Class names and (M, C) 0/1 flags; the first class, "normal", is set when no other flag is.

    Datasets with WFLW's attribute flags use those. Otherwise classes come from the landmarks of schemes with
    head-pose and inner-lip points: |yaw| >= 30, |pitch| >= 25,
    |roll| >= 15 degrees, and mouth open (mean inner-lip gap over 10% of the inter-ocular distance). Other
    schemes get the one class "normal".
    """
    upper, lower = (list(idx) for idx in layout.mouth_gap)
    a, b = layout.outer_eyes
    if all(set(WFLW_ATTRIBUTES) <= set(s.attributes) for s in samples):
        names = list(WFLW_ATTRIBUTES)
        flags = np.array([[s.attributes[a] > 0 for a in names] for s in samples], dtype=np.float32)
    elif samples and layout.shape_points and upper:
        names = list(DERIVED_CLASSES)
        p = np.stack([xy(s.landmarks) for s in samples])
        angles = np.abs(head_poses(p, layout.name, ANNOTATED))
        gap = (np.linalg.norm(p[:, upper] - p[:, lower], axis=2).mean(axis=1)
               / np.linalg.norm(p[:, a] - p[:, b], axis=1))
        flags = np.column_stack([angles[:, 0] >= 30, angles[:, 1] >= 25, angles[:, 2] >= 15, gap > 0.1])
        flags = flags.astype(np.float32)
    else:
        names, flags = [], np.zeros((len(samples), 0), dtype=np.float32)
    normal = (flags.sum(axis=1) == 0).astype(np.float32)[:, None]
    return ["normal"] + names, np.concatenate([normal, flags], axis=1)


def class_weights(flags: np.ndarray) -> np.ndarray:
    """Per-sample weights: sum over a sample's classes of sqrt(1 / class frequency), scaled to mean 1."""
    freq = np.maximum(flags.mean(axis=0), 1.0 / len(flags))
    w = flags @ np.sqrt(1.0 / freq)
    return (w / w.mean()).astype(np.float32)


# --- augmentation ----------------------------------------------------------------------------------------------

class Augmenter:
    """Samples a jittered, rotated, flipped and photometrically perturbed model crop from a pre-crop."""

    def __init__(self, cfg: AugmentConfig, input_size: int, layout: Scheme) -> None:
        self.cfg = cfg
        self.size = input_size
        self.scheme = layout

    def __call__(self, image: np.ndarray, pts: np.ndarray, face_side: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A model crop, its points and (N,) booleans: which points are in sight (not turned behind the face by
        profiling, not under the pasted occluder)."""
        c = self.cfg
        centre = np.full(2, (image.shape[0] - 1) / 2.0)
        seen = np.ones(len(pts), bool)
        source = image
        if c.profile_prob and rng.random() < c.profile_prob:
            fit = lift(pts)
            yaw = turn_for(pts, rng, c.profile_turn, fit=fit)
            pitch = rng.uniform(-c.profile_pitch, c.profile_pitch) if c.profile_pitch else 0.0
            image, pts, seen = profile(image, pts, yaw, pitch, fit)
            framed = crop_from_landmarks(pts, self.size)   # frame the turned face as inference will
            centre, face_side = np.array([framed.cx, framed.cy]), framed.side
        side = face_side * rng.uniform(*c.scale)
        cx, cy = centre + rng.uniform(-c.shift, c.shift, 2) * face_side
        angle = rng.uniform(-c.rotate, c.rotate) if rng.random() < c.rotate_prob else 0.0
        crop = Crop(cx, cy, side, self.size, angle)
        out = crop.warp(image)
        p = crop.to_crop(pts)
        if rng.random() < c.flip_prob:
            out = np.ascontiguousarray(out[:, ::-1])
            p = self.scheme.flip_points(p, self.size)
            seen = seen[list(self.scheme.flip)]
        out = self._photometric(out, rng)
        if rng.random() < c.occlusion_prob:
            out, covered = self._occlude(out, p, source, rng)
            seen = seen & ~covered
        return out, p, seen

    def _photometric(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.cfg
        f = img.astype(np.float32)
        if rng.random() < c.colour_prob:
            grey = f.mean(axis=2, keepdims=True)
            f = grey + (f - grey) * rng.uniform(0.6, 1.4)             # saturation
            f = (f - 127.5) * rng.uniform(0.7, 1.3) + 127.5 + rng.uniform(-25, 25)  # contrast, brightness
        if rng.random() < c.grey_prob:
            f = np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2)
        if rng.random() < c.blur_prob:
            f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.5, 1.5))
        return np.clip(f, 0, 255).astype(np.uint8)

    def _occlude(self, img: np.ndarray, pts: np.ndarray, source: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Paste an occluder (a rectangle or an ellipse; flat colour, noise, or a patch of the pre-crop ``source``:
        hair, clothes, background or skin) and return which points it covers. It lies anywhere, 15-40% of the
        side, or with ``occlusion_parts`` over one region of the face (``_part_box``)."""
        s = self.size
        part = bool(self.cfg.occlusion_parts) and bool(self.scheme.regions) and rng.random() < self.cfg.occlusion_parts
        if part:
            x, y, w, h = self._part_box(pts, rng)
        else:
            h, w = (rng.uniform(0.15, 0.4, 2) * s).astype(int)
            y, x = rng.integers(0, s - h), rng.integers(0, s - w)
        mask = np.zeros((s, s), np.uint8)
        if rng.random() < 0.5:
            mask[y:y + h, x:x + w] = 1
        else:                                 # turned at random, or upright over a part
            cv2.ellipse(mask, (int(x + w // 2), int(y + h // 2)), (int(w // 2), int(h // 2)),
                        0.0 if part else float(rng.uniform(0, 180)), 0, 360, 1, -1)
        inside = mask[y:y + h, x:x + w] > 0   # a turned ellipse is cut to its box, where the fill goes
        kind = rng.integers(3)
        if kind == 0:
            fill = np.broadcast_to(rng.uniform(0, 255, 3), (h, w, 3))
        elif kind == 1:
            fill = rng.uniform(0, 255, (h, w, 3))
        else:
            k = int(rng.integers(min(h, w), source.shape[0] // 2 + 1))
            sy, sx = rng.integers(0, source.shape[0] - k + 1, 2)
            fill = cv2.resize(source[sy:sy + k, sx:sx + k], (int(w), int(h)), interpolation=cv2.INTER_AREA)
        out = img.copy()
        out[y:y + h, x:x + w][inside] = np.clip(fill, 0, 255).astype(np.uint8)[inside]
        px = np.round(xy(pts)).astype(int) - (x, y)
        ok = ((px >= 0) & (px < (w, h))).all(axis=1)
        covered = np.zeros(len(pts), bool)
        covered[ok] = inside[px[ok, 1], px[ok, 0]]
        return out, covered

    def _part_box(self, pts: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(x, y, w, h) of an occluder over one region of the face, as sunglasses, a mask or a hand lie: the
        region's box 1.1-1.6 times as large plus 10% of the side, moved by up to 15% of its size, 10-80% of the
        side, inside the crop."""
        s = self.size
        names = sorted(self.scheme.regions)
        q = xy(pts)[list(self.scheme.regions[names[rng.integers(len(names))]])]
        lo, hi = q.min(axis=0), q.max(axis=0)
        size = np.clip((hi - lo) * rng.uniform(1.1, 1.6, 2) + 0.1 * s, 0.1 * s, 0.8 * s)
        corner = (lo + hi) / 2 + rng.uniform(-0.15, 0.15, 2) * size - size / 2
        w, h = size.astype(int)
        x, y = np.clip(np.round(corner).astype(int), 0, (s - w, s - h))
        return int(x), int(y), int(w), int(h)


@dataclass
class Batch:
    x: np.ndarray                  # (B, 3, S, S) float32 model input
    targets: dict[str, np.ndarray]  # the task's targets (codec-encoded points, and what else the task trains)
    weight: np.ndarray             # (B,) sample weight (PFLD's rare-class weights, or ones)


_JOB = None   # the epoch a forked batch worker prepares batches of (set before the pool forks)


def _make_in_worker(k: int) -> Batch:
    return _JOB(k)


def batches(cs: CropSet, weights: np.ndarray, extras: dict[str, np.ndarray], aug: Augmenter, task,
            batch_size: int, rng: np.random.Generator, workers: int = 1, processes: bool = False,
            shard: Shard = Shard()) -> Iterator[Batch]:
    """One epoch of augmented batches in a random order (the last incomplete batch is dropped); with a
    ``shard`` of several processes, this process's share of each (its own random numbers per batch).

    ``task.targets`` turns each batch's augmented points, per-sample ``extras`` and crops into its targets. Batches
    are prepared by ``workers`` helpers while the model trains: threads (OpenCV and NumPy release the GIL), or
    with ``processes`` forked processes, which face profiling needs (it is Python-bound: threads share one
    interpreter lock and starved a GPU). Each batch has its own seed, so the batches are the same whatever the
    number and kind of workers.
    """
    global _JOB
    order = rng.permutation(len(cs))
    seeds = rng.integers(0, 2**63 - 1, len(order) // batch_size)

    def make(k: int) -> Batch:
        r = np.random.default_rng(seeds[k] if shard.world == 1 else [seeds[k], shard.rank])
        idx = shard.part(order[k * batch_size:(k + 1) * batch_size])
        crops, pts, seen = zip(*(aug(cs.images[i], cs.landmarks[i], cs.face_side, r) for i in idx))
        crops = np.stack(crops)
        per_sample = {name: v[idx] for name, v in extras.items()}
        targets = task.targets(np.stack(pts), {**per_sample, "visible": np.stack(seen)}, crops)
        return Batch(to_input(crops), targets, weights[idx])

    forked = processes and workers > 1 and "fork" in multiprocessing.get_all_start_methods()
    if forked:
        _JOB = make   # the children inherit it (and the crops) when the pool forks them: nothing is pickled but k
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        submit = lambda k: executor.submit(_make_in_worker, k)   # noqa: E731
    else:
        executor = ThreadPoolExecutor(max(1, workers))
        submit = lambda k: executor.submit(make, k)   # noqa: E731
    with executor:
        ahead = max(1, workers) + 2
        pending = [submit(k) for k in range(min(ahead, len(seeds)))]
        for k in range(len(seeds)):
            b = pending.pop(0).result()
            if k + ahead < len(seeds):
                pending.append(submit(k + ahead))
            yield b
