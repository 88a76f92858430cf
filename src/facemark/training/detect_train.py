"""Training the face detector (``training.models.detector``): config, loss, loop, export.

``facemark train CONFIG`` runs this when the config says ``kind: detector`` (configs/detector.yaml). The loss
per batch: sigmoid focal loss of every cell's face score (ignored cells left out) over the number of face
cells, plus ``box`` x GIoU loss of the face cells' boxes, plus ``points`` x smooth-L1 of their 5 points (cells
of faces with known points only). Runs are resumable (``last.pt`` every epoch), seeded, logged in
``log.jsonl``; the last epoch is the model (a fixed schedule: no checkpoint picking).
"""
from __future__ import annotations

import copy
import json
import math
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from ..core.crop import to_input
from ..core.detection import cells, encode
from ..core.errors import DataError, FacemarkError
from ..evaluation.detection import evaluate_detector
from ..inference.detectors import FacemarkDetector
from ..inference.runtime import sha256_of
from .config import _read_yaml, default_data_root
from ..io.boxes import select_part
from ..io.datasets import FORMATS
from .detect_data import READERS, DetectionAugmenter, Photo, load_patches, load_photos, read_photos
from .from_onnx import load_onnx_weights
from .models.detector import FaceDetector


@dataclass
class DetectorConfig:
    name: str
    data: dict
    model: dict = field(default_factory=lambda: {"width": 16, "neck": 48})
    input_size: int = 320
    epochs: int = 40
    batch_size: int = 32
    lr: float = 0.002
    weight_decay: float = 0.0001
    seed: int = 0
    threads: int = 2
    loss: dict = field(default_factory=lambda: {"box": 2.0, "points": 0.5})
    augment: dict = field(default_factory=lambda: {
        "crop_scale": [0.4, 1.6], "rotate": 30.0, "rotate_prob": 0.4, "rotate90_prob": 0.2, "mosaic_prob": 0.3,
        "mosaic_grid": 2, "paste_prob": 0.5, "paste_max": 0.4, "feather": 0.0, "grey_prob": 0.2, "min_face": 6.0,
        "turned_faces": "face"})
    data_root: str = field(default_factory=default_data_root)
    init_from: str = ""   # start from this checkpoint's (or exported .onnx's) weights; optimiser, schedule afresh
    ema: float = 0.0      # > 0: the model is the exponential moving average of the weights, this decay per step
    kind: str = "detector"


def checked_values(path: Path, cls: type, what: str) -> dict:
    """A config file's values (``base:`` as for landmark configs) for dataclass ``cls``: every key one of its
    fields, ``name`` and ``data`` present; an error names the file and the key."""
    values = _read_yaml(Path(path))
    known = set(cls.__dataclass_fields__)
    for key in values:
        if key not in known:
            raise DataError(path, f"{key}: not a {what} setting (known: {', '.join(sorted(known))})")
    for key in ("name", "data"):
        if key not in values:
            raise DataError(path, f"{key}: missing")
    return values


def check_photo_data(path: Path, data: dict) -> None:
    """``data.train`` / ``data.val``: photo datasets as ``{format, path, part}``; ``data.train`` not empty."""
    for i, spec in enumerate(data.get("train", [])):
        if not isinstance(spec, dict) or spec.get("format") not in READERS or "path" not in spec:
            raise DataError(path, f"data.train[{i}]: expected {{format: {'|'.join(READERS)}, path: ...}}, got {spec}")
    for i, spec in enumerate(data.get("paste_faces", [])):
        if not isinstance(spec, str) and not (isinstance(spec, dict) and spec.get("format") in FORMATS):
            raise DataError(path, f"data.paste_faces[{i}]: expected a 300W-layout folder or {{format: "
                                  f"{'|'.join(FORMATS.names())}, ...}}, got {spec}")
    for section in ("train", "val", "paste_faces"):
        for i, spec in enumerate(data.get(section, [])):
            try:
                select_part([], spec.get("part", "") if isinstance(spec, dict) else "")
            except ValueError:
                raise DataError(path, f"data.{section}[{i}].part: expected K/N or -K/N, got {spec.get('part')!r}") from None
    if not data.get("train"):
        raise DataError(path, "data.train: no datasets")
    ignore_boxes(data)


def ignore_boxes(data: dict) -> dict[str, list]:
    """The ignore regions the file ``data.ignore_boxes`` holds (``tools/mine_ignore.py``: photo -> boxes), or {};
    an error names that file and the key."""
    if "ignore_boxes" not in data:
        return {}
    file = Path(data["ignore_boxes"])
    if not file.is_file():
        raise DataError(file, "data.ignore_boxes: file not found")
    try:
        found = json.loads(file.read_text())["photos"]
        if not isinstance(found, dict) or not all(np.shape(v)[1:] == (4,) for v in found.values()):
            raise ValueError
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(file, f"data.ignore_boxes: not a tools/mine_ignore.py file of photo -> [[x1, y1, x2, y2], "
                              f"...] ({e.__class__.__name__})") from None
    return found


def load_detector_config(path: Path) -> DetectorConfig:
    """A checked detector config (``base:`` as for landmark configs); an error names the file and the key."""
    cfg = DetectorConfig(**checked_values(path, DetectorConfig, "detector"))
    defaults = DetectorConfig(name="", data={})
    for section in ("augment", "loss"):
        merged = {**getattr(defaults, section), **getattr(cfg, section)}
        unknown = set(merged) - set(getattr(defaults, section))
        if unknown:
            raise DataError(path, f"{section}.{sorted(unknown)[0]}: not a setting")
        setattr(cfg, section, merged)
    if cfg.augment["turned_faces"] not in ("face", "background"):
        raise DataError(path, f"augment.turned_faces: face or background, not {cfg.augment['turned_faces']!r}")
    if cfg.input_size % 32:
        raise DataError(path, f"input_size: a multiple of 32, not {cfg.input_size}")
    if not 0 <= cfg.ema < 1:
        raise DataError(path, f"ema: a decay in [0, 1), not {cfg.ema!r}")
    if not isinstance(cfg.augment["mosaic_grid"], int) or not 2 <= cfg.augment["mosaic_grid"] <= cfg.input_size // 32:
        raise DataError(path, f"augment.mosaic_grid: tiles per side, 2 to {cfg.input_size // 32}, "
                              f"not {cfg.augment['mosaic_grid']!r}")
    check_photo_data(path, cfg.data)
    return cfg


class TorchFaceDetector(FacemarkDetector):
    """The detector being trained, behind the inference interface (validation uses the shipped code path)."""

    def __init__(self, model: FaceDetector, max_side: int = 640) -> None:
        self.model, self.max_side, self.min_score, self.nms_iou, self.turns = model, max_side, 0.5, 0.4, (0,)

    @torch.no_grad()
    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.model.eval()(torch.from_numpy(x))[0].numpy()


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of boxes given as (l, t, r, b) distances from the same point: (P, 4) each -> (P,)."""
    p_area = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    t_area = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    inter = ((torch.minimum(pred[:, 0], target[:, 0]) + torch.minimum(pred[:, 2], target[:, 2]))
             * (torch.minimum(pred[:, 1], target[:, 1]) + torch.minimum(pred[:, 3], target[:, 3])))
    union = p_area + t_area - inter
    hull = ((torch.maximum(pred[:, 0], target[:, 0]) + torch.maximum(pred[:, 2], target[:, 2]))
            * (torch.maximum(pred[:, 1], target[:, 1]) + torch.maximum(pred[:, 3], target[:, 3])))
    iou = inter / union.clamp(min=1e-9)
    return 1 - (iou - (hull - union) / hull.clamp(min=1e-9))


def detection_loss(out: torch.Tensor, t: dict[str, torch.Tensor], box_weight: float,
                   points_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The module docstring's loss of a batch: (B, C, 15) outputs against ``core.detection`` targets."""
    score = t["score"]
    valid, pos = score >= 0, score > 0
    n_pos = max(1.0, float(pos.sum()))
    logit = out[..., 0]
    target = score.clamp(min=0)
    p = torch.sigmoid(logit)
    ce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    cls = (alpha * (1 - p_t) ** 2 * ce)[valid].sum() / n_pos
    if pos.any():
        box = giou_loss(torch.exp(out[..., 1:5][pos].clamp(-10, 10)), torch.exp(t["box"][pos])).sum() / n_pos
        has = t["has_points"] & pos
        pts = (F.smooth_l1_loss(out[..., 5:][has], t["points"][has], reduction="sum") / 10 / max(1.0, float(has.sum()))
               if has.any() else out.sum() * 0)
    else:
        box = pts = out.sum() * 0
    total = cls + box_weight * box + points_weight * pts
    return total, {"cls": float(cls.detach()), "box": float(box.detach()), "points": float(pts.detach())}


def _batch(aug: DetectionAugmenter, grid, idx: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    samples: list[Photo] = [aug(int(i), rng) for i in idx]
    targets = [encode(grid, s.boxes, s.points, s.ignore) for s in samples]
    return {"x": to_input(np.stack([s.image for s in samples])),
            "score": np.stack([t.score for t in targets]), "box": np.stack([t.box for t in targets]),
            "points": np.stack([t.points for t in targets]), "has_points": np.stack([t.has_points for t in targets])}


def start_run(cfg: Any, run_dir: Path, resume: bool) -> Path:
    """Prepare a detector-kind run directory (refusing to overwrite a run unless resuming), write its resolved
    config, seed every RNG, set the threads; returns the path of its ``last.pt``."""
    last = Path(run_dir) / "last.pt"
    if last.is_file() and not resume:
        raise FacemarkError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    last.parent.mkdir(parents=True, exist_ok=True)
    (last.parent / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    return last


def val_photos(data: dict, root: Path) -> list:
    """The annotated photos of a config's ``data.val`` specs."""
    return read_photos(data.get("val", []), root)


def card_training(card: dict, log: Path | None) -> None:
    """Add a run's training minutes and last validation (from its ``log.jsonl``) to a model card."""
    records = [json.loads(line) for line in log.read_text().splitlines()] if log and log.is_file() else []
    if records:
        card["train_minutes"] = round(sum(r["train_s"] for r in records) / 60, 1)
        card["validation"] = next((r["val"] for r in reversed(records) if "val" in r), None)


class Ema:
    """An exponential moving average of a model's weights and BatchNorm statistics (as YOLO and SCRFD train):
    the decay ramps up from 0 over the first steps, so the average does not keep the initial weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for avg, new in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.is_floating_point():
                avg.mul_(d).add_(new.detach(), alpha=1 - d)
            else:
                avg.copy_(new)


def train_detector(cfg: DetectorConfig, run_dir: Path, resume: bool = False) -> Path:
    """Train (or resume) a detector run in ``run_dir``; returns it."""
    run_dir = Path(run_dir)
    last = start_run(cfg, run_dir, resume)
    model = FaceDetector(**cfg.model).to(memory_format=torch.channels_last)   # ~1.7x faster on CPU
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epoch = 0
    ema = None
    if resume and last.is_file():
        st = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(st.get("raw", st["model"]))
        opt.load_state_dict(st["optimizer"])
        epoch = st["epoch"]
        if cfg.ema:
            ema = Ema(model, cfg.ema)
            ema.model.load_state_dict(st["model"])
    elif cfg.init_from:
        if not Path(cfg.init_from).is_file():
            raise FacemarkError(f"{cfg.init_from}: init_from checkpoint not found")
        if Path(cfg.init_from).suffix != ".onnx":   # an exported model is read once the photos are (below)
            model.load_state_dict(torch.load(cfg.init_from, map_location="cpu", weights_only=False)["model"])
    root = Path(cfg.data_root)
    print(f"reading photos under {root} ...", file=sys.stderr)
    photos = load_photos(cfg.data["train"], root, threads=cfg.threads,
                         ignore_boxes=ignore_boxes(cfg.data))
    patches = load_patches(cfg.data.get("paste_faces", []), root, cfg.data.get("paste_limit", 2000), cfg.seed)
    val = val_photos(cfg.data, root)
    print(f"train {len(photos)} photos, {sum(len(p.boxes) for p in photos)} faces, {len(patches)} faces to paste; "
          f"val {len(val)} photos", file=sys.stderr)
    aug = DetectionAugmenter(photos, patches, cfg.input_size, cfg.augment)
    grid = cells(cfg.input_size, cfg.input_size)
    if epoch == 0 and Path(cfg.init_from).suffix == ".onnx":
        # a shipped detector (its checkpoint gone): BatchNorm statistics measured on 64 augmented samples
        x = _batch(aug, grid, np.arange(min(64, len(photos))), cfg.seed)["x"]
        load_onnx_weights(model, Path(cfg.init_from), torch.from_numpy(x))
        model.to(memory_format=torch.channels_last)
        print(f"initialised from {cfg.init_from}", file=sys.stderr)
    if cfg.ema and ema is None:
        ema = Ema(model, cfg.ema)
    steps = len(photos) // cfg.batch_size
    total = cfg.epochs * steps
    while epoch < cfg.epochs:
        t0 = time.time()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(photos))
        seeds = rng.integers(0, 2**63 - 1, steps)
        model.train()
        sums = {"loss": 0.0, "cls": 0.0, "box": 0.0, "points": 0.0}
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_batch, aug, grid, order[:cfg.batch_size], seeds[0])
            for k in tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr,
                          disable=not sys.stderr.isatty(), leave=False):
                b = pending.result()
                if k + 1 < steps:
                    pending = pool.submit(_batch, aug, grid, order[(k + 1) * cfg.batch_size:(k + 2) * cfg.batch_size],
                                          seeds[k + 1])
                step = epoch * steps + k
                lr = cfg.lr * (min(1.0, (step + 1) / 300) * 0.5 * (1 + math.cos(math.pi * step / total)))
                for g in opt.param_groups:
                    g["lr"] = lr
                t = {key: torch.from_numpy(v) for key, v in b.items() if key != "x"}
                x = torch.from_numpy(b["x"]).contiguous(memory_format=torch.channels_last)
                loss, parts = detection_loss(model(x), t, cfg.loss["box"], cfg.loss["points"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                if ema:
                    ema.update(model, step)
                sums["loss"] += float(loss.detach())
                for key, v in parts.items():
                    sums[key] += v
        epoch += 1
        record: dict[str, Any] = {"epoch": epoch, **{k: round(v / steps, 5) for k, v in sums.items()},
                                  "train_s": round(time.time() - t0, 1)}
        if val and (epoch % 5 == 0 or epoch == cfg.epochs):
            rep = evaluate_detector(TorchFaceDetector(ema.model if ema else model), val)
            record["val"] = {k: rep[k] for k in ("recall", "recall_iou30", "ap", "false_per_photo") if k in rep}
        print(json.dumps(record), file=sys.stderr)
        with (run_dir / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        tmp = run_dir / "last.pt.tmp"
        # "model" is the model to use (the average, with ema); "raw" the trained weights a resume goes on from
        torch.save({"model": (ema.model if ema else model).state_dict(), "optimizer": opt.state_dict(),
                    "epoch": epoch, "config": asdict(cfg), **({"raw": model.state_dict()} if ema else {})}, tmp)
        tmp.replace(last)
    return run_dir


def export_detector(st: dict, name: str, out_dir: Path, extra: dict | None = None,
                    log: Path | None = None) -> Path:
    """ONNX (any input size, a multiple of 32) and its card from a loaded detector checkpoint (``export``
    checks the paths first); the run's ``log`` gives the card its training time and last validation."""
    cfg = st["config"]
    model = FaceDetector(**cfg["model"]).eval()
    model.load_state_dict(st["model"])
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, tmp = out_dir / f"{name}.onnx", out_dir / f".{name}.onnx.tmp"
    torch.onnx.export(model, torch.zeros(1, 3, 320, 320), str(tmp), input_names=["image"], output_names=["cells"],
                      dynamic_axes={"image": {2: "height", 3: "width"}}, opset_version=17, dynamo=False)
    tmp.replace(onnx_path)
    card = {"name": name, "kind": "detector", "strides": [8, 16, 32], "outputs": 15,
            "sha256": sha256_of(onnx_path), "parameters": sum(p.numel() for p in model.parameters()),
            "epochs_run": st["epoch"], "config": cfg, **{k: st[k] for k in ("mixed_from",) if k in st},
            **(extra or {})}
    card_training(card, log)
    onnx_path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return onnx_path
