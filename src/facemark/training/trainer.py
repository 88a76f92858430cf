"""``facemark train``: one config -> a trained, validated checkpoint; resumable and seeded.

Per epoch: augmented batches from the cached crops, optional bf16 autocast, channels_last, cosine learning rate
with warm-up; then NME (inter-ocular) on the validation folder with boxes derived from its landmarks. The
loop is the same for every model family: the config's task (``tasks.py``) gives targets, outputs, per-sample
loss and weights, and hooks (STC's pseudo-label rounds) may change the training set before an epoch.
Training runs on the CPU or on a CUDA device (``device``); the batches are the same either way. The run
directory holds ``config.yaml``, ``last.pt`` (full state, for --resume), ``best.pt`` (weights of the best
validation epoch) and ``log.jsonl`` (one line per epoch).
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from tqdm import tqdm

from ..core.codecs import build_codec
from ..core.crop import crop_from_landmarks
from ..core.errors import FacemarkError
from ..core.schemes import scheme
from ..evaluation.metrics import nme, summary
from ..inference.predictor import predict_warped
from .config import TrainConfig
from .data import (Augmenter, CropSet, batches, build_cropset, class_weights, face_classes, lift_samples,
                   load_datasets)
from .from_onnx import load_onnx_weights
from .predict import TorchPredictor
from .stc import SelfTraining
from .tasks import build_task


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise FacemarkError(f"device {name!r}: training runs on 'cpu' or 'cuda[:N]'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FacemarkError(f"device {name!r}: this torch build sees no CUDA device")
    return device


def _describe(device: torch.device) -> str:
    """The device as the log records it: 'cpu' or 'cuda:GPU NAME'."""
    return f"cuda:{torch.cuda.get_device_name(device)}" if device.type == "cuda" else "cpu"


class Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: Path, cache_dir: Path | None = None, device: str = "cpu",
                 workers: int = 1) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.cache_dir = cache_dir
        self.device = _device(device)
        self.workers = workers
        torch.set_num_threads(cfg.threads)
        if workers > 1:
            cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV's own pool would oversubscribe
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.scheme = scheme(cfg.scheme)
        self.task = build_task(cfg, build_codec(cfg.codec, cfg.input_size, self.scheme.n_points, cfg.dim),
                               cfg.name)
        self.model = self.task.build_model().to(self.device, memory_format=torch.channels_last)
        self.hooks = [SelfTraining(cfg, run_dir)] if cfg.stc.unlabeled else []
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.epoch = 0
        self.best = float("inf")

    # --- data -----------------------------------------------------------------------------------------------
    def load_data(self) -> None:
        cfg = self.cfg
        root = Path(cfg.data_root)
        print(f"reading faces under {root} ...", file=sys.stderr)
        train = load_datasets(root, cfg.data.train, self.scheme.n_points)
        if cfg.dim == 3:
            train = lift_samples(train)
        self.train: CropSet = build_cropset(train, cfg.data.precrop_size, cfg.data.precrop_margin,
                                            self.cache_dir, cfg.threads)
        self.task.prepare(self.model, self.train.landmarks_in_crop(cfg.input_size),
                          fresh=self.epoch == 0 and not cfg.init_from)
        cfg.codec = self.task.codec.config()   # what the codec learned from the data goes into the checkpoint
        names, flags = face_classes(train, self.scheme)
        self.weights = class_weights(flags) if cfg.class_weighting else np.ones(len(train), np.float32)
        self.extras: dict[str, np.ndarray] = {}
        self.val_samples = load_datasets(root, [cfg.data.val], self.scheme.n_points)
        self.val_crops = [crop_from_landmarks(s.landmarks, cfg.input_size) for s in self.val_samples]
        self.val_pixels = np.stack([c.warp(s.load_image()) for c, s in zip(self.val_crops, self.val_samples)])
        freqs = {n: round(float(f), 3) for n, f in zip(names, flags.mean(axis=0))}
        print(f"train {len(train)} faces, class frequencies {freqs}; "
              f"val {len(self.val_samples)} faces", file=sys.stderr)

    def predictor(self) -> TorchPredictor:
        """The model being trained as a crop predictor (for validation and pseudo-labelling)."""
        return TorchPredictor(self.model, self.task.codec, self.cfg.input_size, bf16=self.cfg.bf16)

    # --- state ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "epoch": self.epoch,
                "best": self.best, "config": self.cfg.to_dict(),
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}

    def init_from(self, path: Path) -> None:
        """Start from another run's weights (fine-tuning, STC), or from an exported model's ``.onnx`` (read
        with BatchNorm statistics measured on a batch of training crops, so after ``load_data``); optimiser
        and schedule start afresh."""
        if path.suffix == ".onnx":
            cfg = self.cfg
            aug = Augmenter(cfg.augment, cfg.input_size, self.scheme)
            b = next(iter(batches(self.train, self.weights, self.extras, aug, self.task, cfg.batch_size,
                                  np.random.default_rng([cfg.seed, 0]), 1)))
            load_onnx_weights(self.model, path, self._tensor(b.x))
        else:
            self.task.init_weights(self.model, torch.load(path, map_location="cpu", weights_only=False)["model"])
        print(f"initialised from {path}", file=sys.stderr)

    def resume(self, path: Path) -> None:
        st = torch.load(path, map_location="cpu", weights_only=False)
        self.model.load_state_dict(st["model"])  # copies onto the model's device; the optimiser follows it
        self.opt.load_state_dict(st["optimizer"])
        self.epoch, self.best = st["epoch"], st["best"]
        torch.set_rng_state(st["rng"]["torch"])
        np.random.set_state(st["rng"]["numpy"])
        random.setstate(st["rng"]["python"])
        print(f"resumed from {path} at epoch {self.epoch}", file=sys.stderr)

    # --- loop -----------------------------------------------------------------------------------------------
    def train_epoch(self) -> float:
        cfg = self.cfg
        self.model.train()
        aug = Augmenter(cfg.augment, cfg.input_size, self.scheme)
        rng = np.random.default_rng([cfg.seed, self.epoch])  # epoch-seeded: a resumed run replays exactly
        steps = len(self.train) // cfg.batch_size
        total, warm = steps * cfg.epochs, int(steps * cfg.warmup_epochs)
        # worker processes unless a teacher model runs in them (ONNX Runtime sessions do not survive a fork)
        processes = not cfg.distill.teachers
        bar = tqdm(batches(self.train, self.weights, self.extras, aug, self.task, cfg.batch_size, rng, self.workers,
                           processes),
                   total=steps, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False,
                   mininterval=1.0 if sys.stderr.isatty() else 60.0, disable=None)
        running = 0.0
        for k, b in enumerate(bar):
            lr = cfg.lr * _lr_factor(self.epoch * steps + k, total, warm)
            for g in self.opt.param_groups:
                g["lr"] = lr
            x = self._tensor(b.x).contiguous(memory_format=torch.channels_last)
            t = {name: self._tensor(v) for name, v in b.targets.items()}
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                out = self.task.outputs(self.model, x)
            per_sample = self.task.loss(out, t)
            loss = (self.task.weights(out, t, self._tensor(b.weight)) * per_sample).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / (k + 1):.4f}", lr=f"{lr:.2e}")
        return running / max(1, steps)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device, non_blocking=True)

    def validate(self) -> dict:
        pred = predict_warped(self.predictor(), self.val_pixels, self.val_crops)
        gt = np.array([s.landmarks for s in self.val_samples])
        norm = self.cfg.data.val_norm
        return summary(nme(pred, gt, norm, scheme=self.scheme.name), norm)

    def fit(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        while self.epoch < self.cfg.epochs:
            for hook in self.hooks:
                hook.before_epoch(self)
            t0 = time.time()
            train_loss = self.train_epoch()
            t1 = time.time()
            metrics = self.validate()
            self.epoch += 1
            improved = metrics["nme"] < self.best
            if improved:
                self.best = metrics["nme"]
                _save({"model": self.model.state_dict(), "epoch": self.epoch, "metrics": metrics,
                       "config": self.cfg.to_dict()}, self.run_dir / "best.pt")
            _save(self.state(), self.run_dir / "last.pt")
            rec = {"epoch": self.epoch, "loss": train_loss, "val": metrics, "train_s": round(t1 - t0, 1),
                   "val_s": round(time.time() - t1, 1), "lr": self.opt.param_groups[0]["lr"],
                   "device": _describe(self.device)}
            with (self.run_dir / "log.jsonl").open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            print(f"epoch {self.epoch}/{self.cfg.epochs} loss {train_loss:.4f} val NME {metrics['nme'] * 100:.2f}% "
                  f"FR {metrics['fr'] * 100:.2f}% AUC {metrics['auc']:.4f} ({t1 - t0:.0f}s)"
                  + (" *" if improved else ""), file=sys.stderr, flush=True)


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False, cache_dir: Path | None = None,
          device: str = "cpu", workers: int = 1) -> Path:
    """Train (or resume) a run on ``device`` with ``workers`` batch-preparing threads; returns the run directory."""
    t = Trainer(cfg, run_dir, cache_dir or Path(os.environ.get("FACEMARK_CACHE", run_dir / "cache")), device,
                workers)
    last = run_dir / "last.pt"
    if resume:
        if not last.is_file():
            raise FacemarkError(f"{last}: nothing to resume (no last.pt in the run directory)")
        t.resume(last)
    elif last.is_file():
        raise FacemarkError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    elif cfg.init_from and not Path(cfg.init_from).is_file():
        raise FacemarkError(f"{cfg.init_from}: init_from checkpoint not found")
    t.load_data()
    if cfg.init_from and not resume:   # after the data: an exported .onnx is read with statistics of a batch
        t.init_from(Path(cfg.init_from))
    t.fit()
    return run_dir
