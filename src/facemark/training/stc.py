"""Self-training with curriculum (PIPNet's STC): which unlabeled faces, their pseudo-labels, each round's task.

``SelfTraining`` is a trainer hook: every ``epochs_per_round`` epochs it pseudo-labels the unlabeled faces
with the model being trained and sets the training set to the labeled faces plus those, each pseudo-labeled
face with the round's curriculum ``level`` (the PIP task reads it). The unlabeled images are face crops like
faces68's (the face's landmark box is about half the image side, centred), so the first guess of a face's
crop is the image's central box; a second pass re-crops from the first pass's landmarks, as the inference
pipeline's refine step does.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..core.crop import crop_from_box
from ..core.errors import DataError
from ..inference.predictor import CropPredictor, predict
from ..io.datasets import IMAGE_EXTS, FaceSample
from ..io.images import read_image
from .config import StcConfig, TrainConfig
from .data import CropSet, build_cropset


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


def pseudo_label(model: CropPredictor, paths: list[Path], passes: int = 2) -> list[FaceSample]:
    """Landmarks predicted by ``model`` for each readable image (unreadable ones are reported and skipped)."""
    images, kept = [], []
    for p in paths:
        try:
            images.append(read_image(p))
            kept.append(p)
        except DataError as e:
            print(f"skipping {e}", file=sys.stderr)
    crops = [crop_from_box(central_box(*im.shape[:2]), model.input_size) for im in images]
    pts = predict(model, images, crops, passes=passes)
    return [FaceSample(p, pts_i.astype(np.float64)) for p, pts_i in zip(kept, pts)]


class SelfTraining:
    """The STC trainer hook (see the module docstring); pseudo-labels are kept in the run directory, so a
    resumed run trains on the same labels."""

    def __init__(self, cfg: TrainConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.unlabeled = unlabeled_images(Path(cfg.data_root), cfg.stc)
        self.labeled: tuple[CropSet, np.ndarray] | None = None

    def before_epoch(self, trainer) -> None:
        every = self.cfg.stc.epochs_per_round
        if self.labeled is None:   # the first epoch of this process: keep the labeled set, and (re)start a round
            self.labeled = (trainer.train, trainer.weights)
        elif trainer.epoch % every:
            return
        r = trainer.epoch // every + 1
        samples = self._pseudo_labels(r, trainer)
        cfg = self.cfg
        pseudo = build_cropset(samples, cfg.data.precrop_size, cfg.data.precrop_margin, None, cfg.threads)
        crops, weights = self.labeled
        trainer.train = CropSet(np.concatenate([crops.images, pseudo.images]),
                                np.concatenate([crops.landmarks, pseudo.landmarks]), crops.margin)
        trainer.weights = np.concatenate([weights, np.ones(len(pseudo), np.float32)])
        trainer.extras = {"level": np.concatenate([np.full(len(crops), 3, np.int64),
                                                   np.full(len(pseudo), round_task(r), np.int64)])}
        print(f"STC round {r}: {len(pseudo)} pseudo-labeled faces on task {round_task(r)}", file=sys.stderr)

    def _pseudo_labels(self, r: int, trainer) -> list[FaceSample]:
        path = self.run_dir / f"pseudo-round{r}.npz"
        if path.is_file():
            with np.load(path) as z:
                return [FaceSample(Path(p), pts) for p, pts in zip(z["paths"], z["landmarks"])]
        samples = pseudo_label(trainer.predictor(), self.unlabeled)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")   # one per process under torchrun
        np.savez(tmp, paths=np.array([str(s.image) for s in samples]),
                 landmarks=np.stack([s.landmarks for s in samples]))
        tmp.replace(path)
        return samples
