"""``facemark train`` for landmark models: one config -> a trained, validated checkpoint (on ``training.engine``).

Per epoch: augmented batches from the cached crops, optional bf16 autocast, channels_last, cosine learning rate
with warm-up; then NME (inter-ocular) on the validation folder with boxes derived from its landmarks. The
family is the same for every landmark model: the config's task (``tasks.py``) gives targets, outputs, per-sample
loss and weights, and hooks (STC's pseudo-label rounds) may change the training set before an epoch. The run
directory holds ``config.yaml``, ``last.pt`` (full state, for --resume), ``best.pt`` (weights of the best
validation epoch) and ``log.jsonl`` (one line per epoch).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import torch

from ..core.codecs import build_codec
from ..core.crop import crop_from_landmarks
from ..core.errors import FacemarkError
from ..core.schemes import scheme
from ..evaluation.metrics import nme, summary
from ..inference.predictor import predict_warped
from .config import TrainConfig
from .data import (Augmenter, Batch, CropSet, batches, build_cropset, class_weights, face_classes, lift_samples,
                   load_datasets)
from .engine import Engine, Job, Schedule, Shard, Stage, load_checkpoint
from .from_onnx import load_onnx_weights
from .predict import TorchPredictor
from .stc import SelfTraining
from .tasks import build_task


def _inside(name: str, modules: list[str]) -> bool:
    """Whether a parameter or module name lies inside one of the named modules."""
    return any(name == m or name.startswith(m + ".") for m in modules)


class LandmarkJob(Job, Stage):
    """A landmark model's run: one stage, the model of the config's task."""

    kind = "landmarks"

    def __init__(self, cfg: TrainConfig, run_dir: Path, cache_dir: Path | None = None, workers: int = 1) -> None:
        Job.__init__(self, cfg.to_dict(), cfg.seed, cfg.threads)
        self.cfg, self.run_dir, self.cache_dir, self.workers = cfg, run_dir, cache_dir, workers
        if workers > 1:
            cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV's own pool would oversubscribe
        self.scheme = scheme(cfg.scheme)
        self.task = build_task(cfg, build_codec(cfg.codec, cfg.input_size, self.scheme.n_points, cfg.dim),
                               cfg.name)
        self.hooks = [SelfTraining(cfg, run_dir)] if cfg.stc.unlabeled else []
        self.epoch = 0

    def modules(self) -> dict[str, torch.nn.Module]:
        cfg = self.cfg
        model = self.task.build_model().to(memory_format=torch.channels_last)
        for name, p in model.named_parameters():   # train_only: the rest keeps the weights it starts from
            p.requires_grad_(not cfg.train_only or _inside(name, cfg.train_only))
        # the schedule's warm-up is counted in steps once the data is read (prepare)
        Stage.__init__(self, "train", model, cfg.epochs, cfg.lr, cfg.weight_decay, Schedule(0), metric="nme")
        return {"model": model}

    def stages(self) -> list[Stage]:
        return [self]

    # --- data -----------------------------------------------------------------------------------------------
    def prepare(self, device: torch.device, fresh: bool) -> None:
        cfg = self.cfg
        self.device = device
        root = Path(cfg.data_root)
        print(f"reading faces under {root} ...", file=sys.stderr)
        train = load_datasets(root, cfg.data.train, self.scheme.n_points)
        if cfg.dim == 3:
            train = lift_samples(train)
        self.train: CropSet = build_cropset(train, cfg.data.precrop_size, cfg.data.precrop_margin,
                                            self.cache_dir, cfg.threads)
        self.task.prepare(self.model, self.train.landmarks_in_crop(cfg.input_size),
                          fresh=fresh and not cfg.init_from)
        cfg.codec = self.task.codec.config()   # what the codec learned from the data goes into the checkpoint
        self.config = cfg.to_dict()
        names, flags = face_classes(train, self.scheme)
        self.weights = class_weights(flags) if cfg.class_weighting else np.ones(len(train), np.float32)
        self.extras: dict[str, np.ndarray] = {}
        self.val_samples = load_datasets(root, [cfg.data.val], self.scheme.n_points)
        self.val_crops = [crop_from_landmarks(s.landmarks, cfg.input_size) for s in self.val_samples]
        self.val_pixels = np.stack([c.warp(s.load_image()) for c, s in zip(self.val_crops, self.val_samples)])
        freqs = {n: round(float(f), 3) for n, f in zip(names, flags.mean(axis=0))}
        print(f"train {len(train)} faces, class frequencies {freqs}; "
              f"val {len(self.val_samples)} faces", file=sys.stderr)
        self.schedule = Schedule(int(len(self.train) // cfg.batch_size * cfg.warmup_epochs), 0.01, after_warmup=True)
        if fresh and cfg.init_from:   # after the data: an exported .onnx is read with statistics of a batch
            self.init_from(Path(cfg.init_from))

    def predictor(self) -> TorchPredictor:
        """The model being trained as a crop predictor (for validation and pseudo-labelling)."""
        return TorchPredictor(self.model, self.task.codec, self.cfg.input_size, bf16=self.cfg.bf16)

    def init_from(self, path: Path) -> None:
        """Start from another run's weights (fine-tuning, STC), or from an exported model's ``.onnx`` (read
        with BatchNorm statistics measured on a batch of training crops, so after the data); optimiser and
        schedule start afresh."""
        if path.suffix == ".onnx":
            cfg = self.cfg
            aug = Augmenter(cfg.augment, cfg.input_size, self.scheme)
            b = next(iter(batches(self.train, self.weights, self.extras, aug, self.task, cfg.batch_size,
                                  np.random.default_rng([cfg.seed, 0]), 1)))
            load_onnx_weights(self.model, path, torch.from_numpy(b.x).to(self.device))
        else:
            self.task.init_weights(self.model, load_checkpoint(path)["modules"]["model"])
        print(f"initialised from {path}", file=sys.stderr)

    # --- the stage --------------------------------------------------------------------------------------------
    def steps(self) -> int:
        return len(self.train) // self.cfg.batch_size

    def before_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for hook in self.hooks:
            hook.before_epoch(self)

    def train_mode(self) -> None:
        """Train mode, except that with ``train_only`` the frozen modules run as at inference (their BatchNorm
        statistics stay as loaded)."""
        self.model.train()
        for name, m in self.model.named_modules():
            if self.cfg.train_only and name and not _inside(name, self.cfg.train_only):
                m.eval()

    def batches(self, epoch: int, shard: Shard) -> Iterable[Batch]:
        cfg = self.cfg
        aug = Augmenter(cfg.augment, cfg.input_size, self.scheme)
        rng = np.random.default_rng([cfg.seed, epoch])  # epoch-seeded: a resumed run replays exactly
        # worker processes unless a teacher model runs in them (ONNX Runtime sessions do not survive a fork)
        return batches(self.train, self.weights, self.extras, aug, self.task, cfg.batch_size, rng, self.workers,
                       processes=not cfg.distill.teachers, shard=shard)

    def loss(self, model: torch.nn.Module, b: Batch, device: torch.device) -> tuple[torch.Tensor, dict]:
        x = torch.from_numpy(b.x).to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        t = {name: torch.from_numpy(v).to(device, non_blocking=True) for name, v in b.targets.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            out = self.task.outputs(model, x)
        per_sample = self.task.loss(out, t)
        weight = torch.from_numpy(b.weight).to(device, non_blocking=True)
        return (self.task.weights(out, t, weight) * per_sample).mean(), {}

    def validate(self, model: torch.nn.Module, epoch: int) -> dict:
        pred = predict_warped(self.predictor(), self.val_pixels, self.val_crops)
        gt = np.array([s.landmarks for s in self.val_samples])
        norm = self.cfg.data.val_norm
        return summary(nme(pred, gt, norm, scheme=self.scheme.name), norm)


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False, cache_dir: Path | None = None,
          device: str = "cpu", workers: int = 1, max_steps: int | None = None) -> Path:
    """Train (or resume) a run on ``device`` with ``workers`` batch-preparing helpers; returns the run directory."""
    if not resume and cfg.init_from and not Path(cfg.init_from).is_file():
        raise FacemarkError(f"{cfg.init_from}: init_from checkpoint not found")
    job = LandmarkJob(cfg, Path(run_dir), cache_dir or Path(os.environ.get("FACEMARK_CACHE", Path(run_dir) / "cache")),
                      workers)
    return Engine(run_dir, device, max_steps).run(job, resume)
