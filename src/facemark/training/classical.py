"""Classical models (the Active Shape and Appearance Models of ``core.asm`` and ``core.aam``): built from the
training faces in one pass, with no optimiser and no torch. ``facemark train`` runs a config of ``kind: asm`` or
``kind: aam`` here; the run directory gets the
shipped pair under ``export/`` (the ``.npz`` model and its card, which the runtime reads like an ONNX model's:
``inference.runtime.ClassicalSession``) and ``log.jsonl`` with the validation scores.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import yaml

from ..core.aam import build_aam
from ..core.asm import build_asm
from ..core.crop import crop_from_landmarks
from ..core.errors import DataError
from ..core.schemes import scheme
from ..evaluation.metrics import nme, summary
from ..inference.runtime import sha256_of
from ..io.datasets import load_dataset
from ..io.files import default_data_root

KINDS = ("asm", "aam")


@dataclass
class ClassicalConfig:
    """What a classical model is built from: its faces (``data.train``, every ``step``-th), the crop it works in,
    the faces it is scored on (``data.val``). Data paths are relative to ``data_root``, as in every config."""

    name: str
    kind: str = "asm"
    scheme: str = "ibug68"
    input_size: int = 128
    data: dict = field(default_factory=lambda: {"train": ["faces68/train"], "val": "faces68/test/ytf"})
    step: int = 1
    data_root: str = field(default_factory=default_data_root)


def load_classical_config(path: Path) -> ClassicalConfig:
    """Read and check a classical model's config (``kind: asm`` or ``aam``); an error names the file and the key."""
    values = yaml.safe_load(Path(path).read_text()) or {}
    unknown = set(values) - {f.name for f in fields(ClassicalConfig)}
    if unknown:
        raise DataError(path, f"unknown config keys {sorted(unknown)} for a classical model")
    if "data_root" in values:
        values["data_root"] = str(Path(path).parent / values["data_root"])
    try:
        cfg = ClassicalConfig(**values)
    except TypeError as e:
        raise DataError(path, f"bad config: {e}") from None
    if not isinstance(cfg.data, dict) or set(cfg.data) != {"train", "val"} or not isinstance(cfg.data["train"], list):
        raise DataError(path, "data: a mapping of train (a list of datasets) and val (one)")
    if cfg.kind not in KINDS:
        raise DataError(path, f"kind: {cfg.kind!r} is not a classical model ({', '.join(KINDS)})")
    if scheme(cfg.scheme).shape_points != tuple(range(68)) or cfg.step < 1:
        raise DataError(path, "scheme/step: the classical models are built for iBUG-68 faces, every step-th (step >= 1)")
    return cfg


def build_classical(cfg: ClassicalConfig, run_dir: Path, command_line: str) -> Path:
    """Build the model, score it on ``cfg.val`` (boxes from the landmarks), write ``run_dir/export/NAME.npz``
    and its card; returns the card's path."""
    root, n = Path(cfg.data_root), scheme(cfg.scheme).n_points
    start = time.time()
    faces = [s for spec in cfg.data["train"] for s in load_dataset(spec, root, n)][::cfg.step]
    print(f"building {cfg.kind} from {len(faces)} faces ...", file=sys.stderr)
    crops, points = [], []
    for s in faces:
        c = crop_from_landmarks(s.landmarks, cfg.input_size)
        crops.append(c.warp(s.load_image()))
        points.append(c.to_crop(s.landmarks)[:, :2])
    model = build_asm(crops, np.array(points), cfg.input_size)
    if cfg.kind == "aam":     # fitted from the ASM's answer (the ASM ships inside it)
        model = build_aam(crops, np.array(points), cfg.input_size, starter=model)
    built = time.time() - start
    val = load_dataset(cfg.data["val"], root, n)
    pred = []
    for s in val:
        c = crop_from_landmarks(s.landmarks, cfg.input_size)
        pred.append(c.to_source(model.fit(c.warp(s.load_image()))))
    scores = {"n": len(val), **summary(nme(np.array(pred), np.array([s.landmarks[:, :2] for s in val]), "iod"),
                                       "iod")}
    export = run_dir / "export"
    export.mkdir(parents=True, exist_ok=True)
    weights = export / f"{cfg.name}.npz"
    model.save(weights)
    card = {"name": cfg.name, "scheme": cfg.scheme, "n_points": n, "dim": 2, "input_size": cfg.input_size,
            "codec": {"name": "regression"}, "format": cfg.kind, "weights": weights.name,
            "sha256": sha256_of(weights), "parameters": int(sum(v.size for v in np.load(weights).values())),
            "validation": scores, "train_minutes": round(built / 60, 1), "config": asdict(cfg),
            "python": platform.python_version(), "training_command": command_line,
            "licence": "Built from 300W (iBUG re-annotations of HELEN and AFW) and YouTube-Faces frames: research "
                       "use only, as 300W's terms require."}
    (export / f"{cfg.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    (run_dir / "log.jsonl").write_text(json.dumps({"built_s": round(built, 1), "val": scores}) + "\n")
    print(f"{cfg.name}: NME {scores['nme']:.4f} on {cfg.data['val']}; {export}", file=sys.stderr)
    return export / f"{cfg.name}.json"
