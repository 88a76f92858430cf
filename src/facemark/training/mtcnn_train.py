"""Training MTCNN (``training.models.mtcnn``): config, window sampler, multi-task loss, the three stages, export.

``facemark train CONFIG`` runs this when the config says ``kind: mtcnn`` (configs/mtcnn.yaml). The stages train
one after the other in one run: P-Net, then R-Net, then O-Net. Each draws fresh windows every batch from the
training photos, in the paper's mix of four sample types:
- negatives: windows overlapping every face (ignored ones too) by IoU < 0.3;
- positives (IoU >= 0.65) and part faces (0.4-0.65): windows jittered around annotated faces of the photos
  and, for ``landmark_positives`` of them, around the landmark faces (the photos' faces are small, often masked
  or grey: without these, MTCNN missed large close-up faces);
- landmark faces: windows around faces with 5 points (the 68-point training faces, cut as for the detector's
  pasting).
R-Net and O-Net also get the earlier stages' own windows on the training photos (mined once when the stage
starts: the cascade's false windows are its hard negatives), for ``mined`` of their samples.

The loss (the seed's formula): per sample, sum over tasks j of alpha_j x beta_j x loss_j, where beta_j is 1 when
the sample has a label for task j (face/non-face: negatives and positives; box: positives and part faces; points:
landmark faces) and 0 otherwise, and alpha = (det 1, box 0.5, points 0.5) for P-Net and R-Net, (1, 0.5, 1) for
O-Net. det is binary cross-entropy of the face logit, box and points the mean squared error of the offsets
(``core.cascade``). Online hard-sample mining: in each mini-batch, only the 70% largest losses of each task's
labelled samples count. Runs are resumable (``last.pt`` every epoch) and seeded; a fixed schedule per stage,
the last epoch is the model.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.cascade import crop_window, offsets, square
from ..core.crop import to_input
from ..core.detection import iou
from ..core.errors import DataError, FacemarkError
from ..inference.detectors import MtcnnDetector
from ..inference.runtime import sha256_of
from .detect_data import FIVE_FLIP, Patch, Photo, load_patches, load_photos
from ..io.files import default_data_root
from .detect_train import card_training, check_photo_data, checked_values, detection_metrics, prefetched, val_photos
from .engine import Engine, Job, Schedule, Shard, Stage
from .models.mtcnn import NETS, SIZES, window_outputs

TASK_WEIGHTS = {"pnet": (1.0, 0.5, 0.5), "rnet": (1.0, 0.5, 0.5), "onet": (1.0, 0.5, 1.0)}   # det, box, points
NEG, POS, PART, LANDMARKS = 0, 1, 2, 3
MINED_PER_PHOTO = 100      # the best-scored windows of each photo that mining keeps
STAGE_DEFAULTS = {"pnet": {"epochs": 8, "samples": 96000}, "rnet": {"epochs": 8, "samples": 64000},
                  "onet": {"epochs": 8, "samples": 48000}}


@dataclass
class MtcnnConfig:
    name: str
    data: dict
    stages: dict = field(default_factory=lambda: {k: dict(v) for k, v in STAGE_DEFAULTS.items()})
    mix: list = field(default_factory=lambda: [3, 1, 1, 2])   # negatives : positives : part faces : landmark faces
    ohem: float = 0.7            # share of each task's largest per-sample losses that count
    mined: float = 0.5           # share of R-Net's and O-Net's samples drawn from the earlier stages' windows
    landmark_positives: float = 0.0   # share of positives and part faces cut around the landmark faces
    min_face: float = 12.0       # annotated faces smaller than this (pixels, as loaded) give no positives
    batch_size: int = 256
    lr: float = 0.002
    weight_decay: float = 0.0001
    seed: int = 0
    threads: int = 2
    grey_prob: float = 0.2
    data_root: str = field(default_factory=default_data_root)
    kind: str = "mtcnn"


def load_mtcnn_config(path: Path) -> MtcnnConfig:
    """A checked MTCNN config; an error names the file and the key."""
    values = checked_values(path, MtcnnConfig, "MTCNN")
    stages = values.pop("stages", {})
    cfg = MtcnnConfig(**values)
    for stage, settings in stages.items():
        if stage not in STAGE_DEFAULTS:
            raise DataError(path, f"stages.{stage}: not a stage (pnet, rnet, onet)")
        unknown = set(settings) - set(STAGE_DEFAULTS[stage])
        if unknown:
            raise DataError(path, f"stages.{stage}.{sorted(unknown)[0]}: not a setting (epochs, samples)")
        cfg.stages[stage].update(settings)
    if len(cfg.mix) != 4 or min(cfg.mix) < 0 or not sum(cfg.mix):
        raise DataError(path, f"mix: four non-negative weights (negatives, positives, part, landmark), got {cfg.mix}")
    check_photo_data(path, cfg.data)
    return cfg


# --- windows --------------------------------------------------------------------------------------------------

@dataclass
class MinedWindows:
    """Windows an earlier stage proposed on the training photos, by type: (photo index, window (4,))."""

    windows: dict[int, list[tuple[int, np.ndarray]]]


class WindowSampler:
    """Draws one window of a sample type and returns its crop, type and targets."""

    def __init__(self, photos: list[Photo], patches: list[Patch], size: int, cfg: MtcnnConfig,
                 mined: MinedWindows | None = None) -> None:
        self.photos, self.patches, self.size, self.cfg, self.mined = photos, patches, size, cfg, mined
        # windows come from the photos (negatives: only from them) and from the landmark faces' crops
        self.sources = photos + [Photo(p.image, p.box[None], p.points[None], np.zeros(1, bool)) for p in patches]
        self.faces = [(i, k) for i, p in enumerate(photos) for k in range(len(p.boxes))
                      if not p.ignore[k] and min(p.boxes[k, 2:] - p.boxes[k, :2]) >= cfg.min_face]

    def __call__(self, kind: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(crop, box offsets (4,), point offsets (10,)); NaN targets where the type has none."""
        if kind == LANDMARKS:
            return self._landmark(rng)
        if self.mined and self.mined.windows.get(kind) and rng.random() < self.cfg.mined:
            i, window = self.mined.windows[kind][rng.integers(len(self.mined.windows[kind]))]
            return self._sample(self.photos[i], window, kind, rng)
        for _ in range(50):
            i, window = self._negative(rng) if kind == NEG else self._jittered(kind, rng)
            if window is not None:
                return self._sample(self.sources[i], window, kind, rng)
        raise FacemarkError(f"MTCNN sampler: no window of type {kind} after 50 tries (too few faces?)")

    def _sample(self, photo: Photo, window: np.ndarray, kind: int, rng: np.random.Generator):
        crop = crop_window(photo.image, window, self.size)
        box = np.full(4, np.nan)
        if kind in (POS, PART):
            box = offsets(window, photo.boxes[iou(window, photo.boxes)[0].argmax()])[0]
        return self._finish(crop, box, np.full(10, np.nan), rng)

    def _negative(self, rng: np.random.Generator) -> tuple[int, np.ndarray | None]:
        i = int(rng.integers(len(self.photos)))
        p = self.photos[i]
        h, w = p.image.shape[:2]
        side = int(rng.integers(12, max(13, min(h, w) // 2)))
        x, y = int(rng.integers(0, max(1, w - side))), int(rng.integers(0, max(1, h - side)))
        window = np.array([x, y, x + side, y + side], dtype=np.float64)
        if len(p.boxes) and iou(window, p.boxes).max() >= 0.3:
            return i, None
        return i, window

    def _jittered(self, kind: int, rng: np.random.Generator) -> tuple[int, np.ndarray | None]:
        if self.patches and rng.random() < self.cfg.landmark_positives:
            i, k = len(self.photos) + int(rng.integers(len(self.patches))), 0
        else:
            i, k = self.faces[int(rng.integers(len(self.faces)))]
        box = self.sources[i].boxes[k]
        w, h = box[2] - box[0], box[3] - box[1]
        spread = 0.1 if kind == POS else 0.3
        side = max(w, h) * rng.uniform(1 - spread, 1 + spread)
        cx = (box[0] + box[2]) / 2 + rng.uniform(-spread, spread) * w
        cy = (box[1] + box[3]) / 2 + rng.uniform(-spread, spread) * h
        window = square(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))[0]
        overlap = iou(window, self.sources[i].boxes)[0].max()
        ok = overlap >= 0.65 if kind == POS else 0.4 <= overlap < 0.65
        return i, window if ok else None

    def _landmark(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for _ in range(50):
            p = self.patches[int(rng.integers(len(self.patches)))]
            w, h = p.box[2] - p.box[0], p.box[3] - p.box[1]
            side = max(w, h) * rng.uniform(0.9, 1.1)
            cx = (p.box[0] + p.box[2]) / 2 + rng.uniform(-0.1, 0.1) * w
            cy = (p.box[1] + p.box[3]) / 2 + rng.uniform(-0.1, 0.1) * h
            window = square(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))[0]
            if iou(window, p.box)[0, 0] >= 0.65:
                pts = offsets(window, p.box, p.points)[1]
                return self._finish(crop_window(p.image, window, self.size), np.full(4, np.nan), pts, rng)
        raise FacemarkError("MTCNN sampler: no landmark window after 50 tries")

    def _finish(self, crop: np.ndarray, box: np.ndarray, pts: np.ndarray, rng: np.random.Generator):
        """Mirror half of the windows (box and points with them) and make some grey."""
        if rng.random() < 0.5:
            crop = np.ascontiguousarray(crop[:, ::-1])
            box = np.array([-box[2], box[1], -box[0], box[3]])
            p = pts.reshape(5, 2)[FIVE_FLIP]
            pts = np.column_stack([1 - p[:, 0], p[:, 1]]).reshape(10)
        if rng.random() < self.cfg.grey_prob:
            crop = np.repeat(crop.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
        return crop, box, pts


def _batch(sampler: WindowSampler, kinds: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    crops, boxes, pts = zip(*(sampler(int(k), rng) for k in kinds))
    return {"x": to_input(np.stack(crops)), "kind": kinds.astype(np.int64),
            "box": np.stack(boxes).astype(np.float32), "points": np.stack(pts).astype(np.float32)}


# --- loss -------------------------------------------------------------------------------------------------------

def _hardest(losses: torch.Tensor, share: float) -> torch.Tensor:
    """Mean of the ``share`` largest of a task's per-sample losses (0 when it has none)."""
    if not len(losses):
        return losses.sum()
    k = max(1, int(math.ceil(share * len(losses))))
    return losses.topk(k).values.mean()


def mtcnn_loss(out: torch.Tensor, kind: torch.Tensor, box: torch.Tensor, points: torch.Tensor,
               weights: tuple[float, float, float], ohem: float = 0.7) -> tuple[torch.Tensor, dict[str, float]]:
    """The module docstring's loss of a batch: (B, 15) outputs, sample types (B,), box (B, 4) and point (B, 10)
    offset targets (NaN where a type has none)."""
    has_det = (kind == NEG) | (kind == POS)
    has_box = (kind == POS) | (kind == PART)
    has_pts = kind == LANDMARKS
    det = F.binary_cross_entropy_with_logits(out[has_det, 0], (kind[has_det] == POS).float(), reduction="none")
    box_l = ((out[has_box, 1:5] - box[has_box]) ** 2).mean(dim=1)
    pts_l = ((out[has_pts, 5:15] - points[has_pts]) ** 2).mean(dim=1)
    parts = [_hardest(x, ohem) for x in (det, box_l, pts_l)]
    total = sum(w * p for w, p in zip(weights, parts))
    return total, {name: float(p.detach()) for name, p in zip(("det", "box", "points"), parts)}


# --- the cascade being trained, behind the inference interface -------------------------------------------------

class TorchMtcnn(MtcnnDetector):
    """The stages trained so far, run by the inference code (mining and validation use the shipped code path)."""

    def __init__(self, nets: dict[str, torch.nn.Module], min_face: float = 20.0, max_side: int = 1280,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)) -> None:
        super().__init__(nets, max_side=max_side, min_face=min_face, thresholds=thresholds)

    def _open(self, nets: dict[str, torch.nn.Module], threads: int) -> None:
        self.nets = nets

    @torch.no_grad()
    def _net(self, stage: str, x: np.ndarray) -> np.ndarray:
        net = self.nets[stage].eval()
        return net(torch.from_numpy(x).to(next(net.parameters()).device)).cpu().numpy()

    def windows(self, image: np.ndarray, upto: str) -> np.ndarray:
        """The squared windows the stages before ``upto`` pass on for one image."""
        win = self._proposals(image)
        if upto == "onet":
            win = square(self._refine(image, win, "rnet", self.thresholds[1], 0.7)[0])
        return win


def mine(nets: dict[str, torch.nn.Module], photos: list[Photo], stage: str, cfg: MtcnnConfig) -> MinedWindows:
    """Sort the earlier stages' windows on every training photo by their overlap with its faces."""
    cascade = TorchMtcnn(nets, min_face=max(cfg.min_face, 20.0), thresholds=(0.5, 0.5, 0.5))
    mined: dict[int, list] = {NEG: [], POS: [], PART: []}
    for i, p in enumerate(tqdm(photos, desc=f"mining windows for {stage}", file=sys.stderr,
                               disable=not sys.stderr.isatty(), leave=False)):
        windows = cascade.windows(p.image, stage)[:MINED_PER_PHOTO]
        if not len(windows):
            continue
        best = iou(windows, p.boxes).max(axis=1) if len(p.boxes) else np.zeros(len(windows))
        ignored = (iou(windows, p.boxes[p.ignore]).max(axis=1) >= 0.3) if p.ignore.any() else np.zeros(len(windows), bool)
        for w, o, ig in zip(windows, best, ignored):
            if o < 0.3 and not ig:
                mined[NEG].append((i, w))
            elif o >= 0.65:
                mined[POS].append((i, w))
            elif o >= 0.4:
                mined[PART].append((i, w))
    return MinedWindows(mined)


# --- the stages on the engine ---------------------------------------------------------------------------------

class MtcnnStage(Stage):
    """One net of the cascade: windows drawn fresh every batch (after mining the earlier stages' windows)."""

    def __init__(self, job: MtcnnJob, index: int, stage: str) -> None:
        cfg = job.cfg
        super().__init__(stage, job.nets[stage], cfg.stages[stage]["epochs"], cfg.lr, cfg.weight_decay,
                         Schedule(100))
        self.job, self.index = job, index

    def start(self) -> None:
        job = self.job
        mined = mine(job.nets, job.photos, self.name, job.cfg) if self.name != "pnet" else None
        if mined:
            print(f"{self.name}: mined {', '.join(f'{len(v)} {n}' for n, v in zip(('negative', 'positive', 'part'), mined.windows.values()))} windows",
                  file=sys.stderr)
        self.sampler = WindowSampler(job.photos, job.patches, SIZES[self.name], job.cfg, mined)

    def steps(self) -> int:
        return self.job.cfg.stages[self.name]["samples"] // self.job.cfg.batch_size

    def batches(self, epoch: int, shard: Shard) -> Iterator[dict[str, np.ndarray]]:
        cfg, steps = self.job.cfg, self.steps()
        rng = np.random.default_rng([cfg.seed, self.index, epoch])
        kinds = rng.choice(4, size=(steps, cfg.batch_size), p=self.job.mix)
        seeds = rng.integers(0, 2**63 - 1, steps)
        return prefetched(lambda k: _batch(self.sampler, shard.part(kinds[k]),
                                           seeds[k] if shard.world == 1 else [seeds[k], shard.rank]), steps)

    def loss(self, model: torch.nn.Module, b: dict[str, np.ndarray], device: torch.device):
        t = {key: torch.from_numpy(v).to(device) for key, v in b.items()}
        return mtcnn_loss(window_outputs(model, t["x"]), t["kind"], t["box"], t["points"], TASK_WEIGHTS[self.name],
                          self.job.cfg.ohem)

    def validate(self, model: torch.nn.Module, epoch: int) -> dict | None:
        if self.name != "onet" or not self.job.val or epoch != self.epochs:
            return None
        return detection_metrics(TorchMtcnn(self.job.nets), self.job.val)


class MtcnnJob(Job):
    """MTCNN's run on the engine: P-Net, R-Net and O-Net as three stages, one after the other."""

    kind = "mtcnn"

    def __init__(self, cfg: MtcnnConfig) -> None:
        super().__init__(asdict(cfg), cfg.seed, cfg.threads)
        self.cfg = cfg
        self.mix = np.asarray(cfg.mix, dtype=np.float64) / sum(cfg.mix)

    def modules(self) -> dict[str, torch.nn.Module]:
        self.nets = {stage: cls() for stage, cls in NETS.items()}
        return self.nets

    def prepare(self, device: torch.device, fresh: bool) -> None:
        cfg = self.cfg
        root = Path(cfg.data_root)
        print(f"reading photos under {root} ...", file=sys.stderr)
        self.photos = load_photos(cfg.data["train"], root, threads=cfg.threads)
        self.patches = load_patches(cfg.data.get("landmark_faces", []), root, cfg.data.get("landmark_limit", 4000),
                                    cfg.seed)
        if not self.patches:
            raise FacemarkError("MTCNN: data.landmark_faces gave no faces with 5 points (landmark samples need them)")
        self.val = val_photos(cfg.data, root)
        print(f"train {len(self.photos)} photos, {sum(len(p.boxes) for p in self.photos)} faces, "
              f"{len(self.patches)} landmark faces; val {len(self.val)} photos", file=sys.stderr)

    def stages(self) -> list[Stage]:
        return [MtcnnStage(self, k, stage) for k, stage in enumerate(NETS)]


def train_mtcnn(cfg: MtcnnConfig, run_dir: Path, resume: bool = False, device: str = "cpu",
                max_steps: int | None = None) -> Path:
    """Train (or resume) the three stages in ``run_dir``; returns it."""
    return Engine(run_dir, device, max_steps).run(MtcnnJob(cfg), resume)


def export_mtcnn(st: dict, name: str, out_dir: Path, extra: dict | None = None, log: Path | None = None) -> Path:
    """The three nets as ONNX (``NAME_pnet.onnx`` on any image size, ...) and their card ``NAME.json`` (with
    each file's sha256); returns the card's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    card: dict[str, Any] = {"name": name, "kind": "mtcnn", "sha256": {}, "parameters": {}}
    for stage, cls in NETS.items():
        net = cls().eval()
        net.load_state_dict(st["modules"][stage])
        size = SIZES[stage]
        path, tmp = out_dir / f"{name}_{stage}.onnx", out_dir / f".{name}_{stage}.onnx.tmp"
        axes = {"image": {0: "batch", 2: "height", 3: "width"}} if stage == "pnet" else {"image": {0: "batch"}}
        torch.onnx.export(net, torch.zeros(1, 3, size, size), str(tmp), input_names=["image"], output_names=["out"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
        tmp.replace(path)
        card["sha256"][stage] = sha256_of(path)
        card["parameters"][stage] = sum(p.numel() for p in net.parameters())
    card.update({"config": st["config"], **(extra or {})})
    card_training(card, log)
    card_path = out_dir / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card_path
