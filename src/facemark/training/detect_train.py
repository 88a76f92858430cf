"""Training the face detector (``training.models.detector``): config, loss, loop, export.

``facemark train CONFIG`` runs this when the config says ``kind: detector`` (configs/facemark_det.yaml). The loss
per batch: sigmoid focal loss of every cell's face score (ignored cells left out) over the number of face
cells, plus ``box`` x GIoU loss of the face cells' boxes, plus ``points`` x smooth-L1 of their 5 points (cells
of faces with known points only). Runs are resumable (``last.pt`` every epoch), seeded, logged in
``log.jsonl``; the last epoch is the model (a fixed schedule: no checkpoint picking).
"""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..core.crop import to_input
from ..core.detection import cells, encode
from ..core.errors import DataError, FacemarkError
from ..evaluation.detection import evaluate_detector
from ..inference.detectors import SingleShotDetector
from ..inference.runtime import sha256_of
from ..io.files import default_data_root
from .config import _read_yaml
from ..io.boxes import BOX_FORMATS, select_part
from ..io.datasets import FORMATS
from .detect_data import DetectionAugmenter, Photo, load_patches, load_photos, read_photos
from .engine import Engine, Job, Schedule, Shard, Stage, load_checkpoint
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
        "turned_faces": "face", "paste_count": [1, 3], "paste_small": 0.0, "stretch": 0.0, "motion_blur_prob": 0.0,
        "low_res_prob": 0.0, "low_light_prob": 0.0, "jpeg_prob": 0.0})
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
        if not isinstance(spec, dict) or spec.get("format") not in BOX_FORMATS or "path" not in spec:
            raise DataError(path, f"data.train[{i}]: expected {{format: {'|'.join(BOX_FORMATS.names())}, path: ..."
                                  f"[, images: ...]}}, got {spec}")
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
    """The ignore regions the file ``data.ignore_boxes`` holds (``tools/experiments/mine_ignore.py``: photo -> boxes), or {};
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
        raise DataError(file, f"data.ignore_boxes: not a tools/experiments/mine_ignore.py file of photo -> [[x1, y1, x2, y2], "
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
    count = cfg.augment["paste_count"]
    if not (isinstance(count, list) and len(count) == 2 and all(isinstance(n, int) for n in count)
            and 1 <= count[0] <= count[1]):
        raise DataError(path, f"augment.paste_count: [least, most] faces pasted per sample, not {count!r}")
    for key in ("paste_small", "motion_blur_prob", "low_res_prob", "low_light_prob", "jpeg_prob"):
        if not 0 <= cfg.augment[key] <= 1:
            raise DataError(path, f"augment.{key}: a probability in [0, 1], not {cfg.augment[key]!r}")
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


class TorchFaceDetector(SingleShotDetector):
    """The detector being trained, behind the inference interface (validation uses the shipped code path)."""

    def __init__(self, model: FaceDetector, max_side: int = 640) -> None:
        super().__init__(model, max_side=max_side)

    def _open(self, model: FaceDetector, threads: int) -> None:
        self.model, self.strides = model, model.strides

    @torch.no_grad()
    def _run(self, x: np.ndarray) -> np.ndarray:
        device = next(self.model.parameters()).device
        return self.model.eval()(torch.from_numpy(x).to(device))[0].cpu().numpy()


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


def _batch(aug: DetectionAugmenter, grid, idx: np.ndarray, seed) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    samples: list[Photo] = [aug(int(i), rng) for i in idx]
    targets = [encode(grid, s.boxes, s.points, s.ignore) for s in samples]
    return {"x": to_input(np.stack([s.image for s in samples])),
            "score": np.stack([t.score for t in targets]), "box": np.stack([t.box for t in targets]),
            "points": np.stack([t.points for t in targets]), "has_points": np.stack([t.has_points for t in targets])}


def prefetched(make: Callable[[int], Any], steps: int) -> Iterator[Any]:
    """``make(0)``, ``make(1)``, ... ``make(steps - 1)``, each prepared on a helper thread while the previous one
    trains."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(make, 0) if steps else None
        for k in range(steps):
            b = pending.result()
            if k + 1 < steps:
                pending = pool.submit(make, k + 1)
            yield b


def val_photos(data: dict, root: Path) -> list:
    """The annotated photos of a config's ``data.val`` specs."""
    return read_photos(data.get("val", []), root)


def card_training(card: dict, log: Path | None) -> None:
    """Add a run's training minutes and last validation (from its ``log.jsonl``) to a model card."""
    records = [json.loads(line) for line in log.read_text().splitlines()] if log and log.is_file() else []
    if records:
        card["train_minutes"] = round(sum(r["train_s"] for r in records) / 60, 1)
        card["validation"] = next((r["val"] for r in reversed(records) if "val" in r), None)


def detection_metrics(detector, photos: list) -> dict:
    """The validation numbers a detector run logs."""
    rep = evaluate_detector(detector, photos)
    return {k: rep[k] for k in ("recall", "recall_iou30", "ap", "false_per_photo") if k in rep}


class DetectorJob(Job, Stage):
    """The detector's run on the engine: one stage; warm-up over 300 steps, cosine to 0, gradients clipped at
    norm 10, the weight average with ``ema``; validated every 5 epochs and at the end."""

    kind = "detector"

    def __init__(self, cfg: DetectorConfig) -> None:
        Job.__init__(self, asdict(cfg), cfg.seed, cfg.threads)
        self.cfg = cfg

    def modules(self) -> dict[str, torch.nn.Module]:
        model = FaceDetector(**self.cfg.model).to(memory_format=torch.channels_last)   # ~1.7x faster on CPU
        Stage.__init__(self, "train", model, self.cfg.epochs, self.cfg.lr, self.cfg.weight_decay, Schedule(300),
                       clip=10.0, ema=self.cfg.ema)
        return {"model": model}

    def stages(self) -> list[Stage]:
        return [self]

    def prepare(self, device: torch.device, fresh: bool) -> None:
        cfg = self.cfg
        init = Path(cfg.init_from) if cfg.init_from else None
        if fresh and init is not None:
            if not init.is_file():
                raise FacemarkError(f"{cfg.init_from}: init_from checkpoint not found")
            if init.suffix != ".onnx":   # an exported model is read once the photos are (below)
                self.model.load_state_dict(load_checkpoint(init)["modules"]["model"])
        root = Path(cfg.data_root)
        print(f"reading photos under {root} ...", file=sys.stderr)
        self.photos = load_photos(cfg.data["train"], root, threads=cfg.threads, ignore_boxes=ignore_boxes(cfg.data))
        patches = load_patches(cfg.data.get("paste_faces", []), root, cfg.data.get("paste_limit", 2000), cfg.seed)
        self.val = val_photos(cfg.data, root)
        print(f"train {len(self.photos)} photos, {sum(len(p.boxes) for p in self.photos)} faces, {len(patches)} "
              f"faces to paste; val {len(self.val)} photos", file=sys.stderr)
        self.aug = DetectionAugmenter(self.photos, patches, cfg.input_size, cfg.augment)
        self.grid = cells(cfg.input_size, cfg.input_size, self.model.strides)
        if fresh and init is not None and init.suffix == ".onnx":
            # a shipped detector (its checkpoint gone): BatchNorm statistics measured on 64 augmented samples
            x = _batch(self.aug, self.grid, np.arange(min(64, len(self.photos))), cfg.seed)["x"]
            load_onnx_weights(self.model, init, torch.from_numpy(x).to(device))
            self.model.to(memory_format=torch.channels_last)
            print(f"initialised from {cfg.init_from}", file=sys.stderr)

    def steps(self) -> int:
        return len(self.photos) // self.cfg.batch_size

    def batches(self, epoch: int, shard: Shard) -> Iterator[dict[str, np.ndarray]]:
        cfg, steps = self.cfg, self.steps()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(self.photos))
        seeds = rng.integers(0, 2**63 - 1, steps)
        return prefetched(lambda k: _batch(self.aug, self.grid,
                                           shard.part(order[k * cfg.batch_size:(k + 1) * cfg.batch_size]),
                                           seeds[k] if shard.world == 1 else [seeds[k], shard.rank]), steps)

    def loss(self, model: torch.nn.Module, b: dict[str, np.ndarray], device: torch.device):
        t = {key: torch.from_numpy(v).to(device) for key, v in b.items() if key != "x"}
        x = torch.from_numpy(b["x"]).to(device).contiguous(memory_format=torch.channels_last)
        return detection_loss(model(x), t, self.cfg.loss["box"], self.cfg.loss["points"])

    def validate(self, model: torch.nn.Module, epoch: int) -> dict | None:
        if not self.val or (epoch % 5 and epoch != self.cfg.epochs):
            return None
        return detection_metrics(TorchFaceDetector(model), self.val)


def train_detector(cfg: DetectorConfig, run_dir: Path, resume: bool = False, device: str = "cpu",
                   max_steps: int | None = None) -> Path:
    """Train (or resume) a detector run in ``run_dir``; returns it."""
    return Engine(run_dir, device, max_steps).run(DetectorJob(cfg), resume)


def export_detector(st: dict, name: str, out_dir: Path, extra: dict | None = None,
                    log: Path | None = None) -> Path:
    """ONNX (any input size, a multiple of 32) and its card from a loaded detector checkpoint (``export``
    checks the paths first); the run's ``log`` gives the card its training time and last validation."""
    cfg = st["config"]
    model = FaceDetector(**cfg["model"]).eval()
    model.load_state_dict(st["modules"]["model"])
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, tmp = out_dir / f"{name}.onnx", out_dir / f".{name}.onnx.tmp"
    torch.onnx.export(model, torch.zeros(1, 3, 320, 320), str(tmp), input_names=["image"], output_names=["cells"],
                      dynamic_axes={"image": {2: "height", 3: "width"}}, opset_version=17, dynamo=False)
    tmp.replace(onnx_path)
    card = {"name": name, "kind": "detector", "strides": list(model.strides), "outputs": 15,
            "sha256": sha256_of(onnx_path), "parameters": sum(p.numel() for p in model.parameters()),
            "epochs_run": st["done"]["train"], "config": cfg, **{k: st[k] for k in ("mixed_from",) if k in st},
            **(extra or {})}
    card_training(card, log)
    onnx_path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return onnx_path
