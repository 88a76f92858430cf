"""Self-training with curriculum (PIPNet's STC): which unlabeled faces, their pseudo-labels, each round's task.

The unlabeled images are face crops like faces68's (the face's landmark box is about half the image side,
centred), so the first guess of a face's crop is the image's central box; a second pass re-crops from the
first pass's landmarks, as the inference pipeline's refine step does.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from ..config import StcConfig
from ..crop import crop_from_box, crop_from_landmarks
from ..errors import DataError
from ..images import read_image
from ..readers import IMAGE_EXTS, FaceSample
from .evaluate import ValCrops, predict_crops


def person(path: Path) -> str:
    """The identity in a ``NAME_K`` file name (YouTube-Faces frames of faces68)."""
    return path.stem.rsplit("_", 1)[0]


def unlabeled_images(root: Path, cfg: StcConfig) -> list[Path]:
    """The images of ``cfg.unlabeled``, less the frames of the people in ``cfg.exclude_people_of``."""
    folder = root / cfg.unlabeled
    if not folder.is_dir():
        raise DataError(folder, "unlabeled image folder not found")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if cfg.exclude_people_of:
        held_out = root / cfg.exclude_people_of
        if not held_out.is_dir():
            raise DataError(held_out, "folder of people to exclude not found")
        people = {person(p) for p in held_out.iterdir() if p.suffix.lower() in IMAGE_EXTS}
        images = [p for p in images if person(p) not in people]
    if not images:
        raise DataError(folder, "no unlabeled images left to pseudo-label")
    return images


def round_task(round_index: int) -> int:
    """The curriculum task of pseudo-labeled faces in round 1, 2, 3, 4, ...: 1, 2, 3, 1, ..."""
    return (round_index - 1) % 3 + 1


def central_box(h: int, w: int) -> np.ndarray:
    """The landmark box of a faces68-style crop: centred, half the image's longer side."""
    r = max(h, w) / 4
    return np.array([w / 2 - r, h / 2 - r, w / 2 + r, h / 2 + r])


@torch.no_grad()
def pseudo_label(model: torch.nn.Module, codec, paths: list[Path], size: int, passes: int = 2,
                 bf16: bool = False) -> list[FaceSample]:
    """Landmarks predicted by ``model`` for each readable image (unreadable ones are reported and skipped)."""
    images, kept = [], []
    for p in paths:
        try:
            images.append(read_image(p))
            kept.append(p)
        except DataError as e:
            print(f"skipping {e}", file=sys.stderr)
    crops = [crop_from_box(central_box(*im.shape[:2]), size) for im in images]
    for _ in range(passes):
        val = ValCrops(np.stack([c.warp(im) for c, im in zip(crops, images)]), crops)
        pts = predict_crops(model, codec, val, bf16=bf16)
        crops = [crop_from_landmarks(p, size) for p in pts]
    return [FaceSample(p, pts_i.astype(np.float64)) for p, pts_i in zip(kept, pts)]
