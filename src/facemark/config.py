"""Training configs: plain dataclasses filled from YAML files under configs/."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import DataError


@dataclass
class AugmentConfig:
    """Random perturbations applied to each training crop."""

    shift: float = 0.08          # box centre jitter, fraction of the crop side (uniform +-)
    scale: tuple[float, float] = (0.95, 1.1)  # crop side multiplier range
    rotate: float = 30.0         # max rotation in degrees (uniform +-)
    rotate_prob: float = 0.5
    flip_prob: float = 0.5
    colour_prob: float = 0.8     # brightness / contrast / saturation jitter
    grey_prob: float = 0.1
    blur_prob: float = 0.15
    occlusion_prob: float = 0.3  # a random rectangle of 15-40% of the side, flat colour or noise


@dataclass
class DataConfig:
    """Where the faces come from. Paths are relative to the config's ``data_root`` (default ../shared/data)."""

    train: list = field(default_factory=lambda: ["faces68/train"])  # folders, or specs (readers.load_dataset)
    val: str | dict = "faces68/test/ytf"
    val_norm: str = "iod"         # NME normaliser of the validation metric
    n_points: int = 68
    precrop_margin: float = 1.8   # cached pre-crop side relative to the model crop (room for rotation/jitter)
    precrop_size: int = 224


@dataclass
class StcConfig:
    """PIPNet's self-training with curriculum on unlabeled faces (off while ``unlabeled`` is empty).

    Every ``epochs_per_round`` epochs the current model pseudo-labels the unlabeled images (face crops about
    twice the landmark box, like faces68) and training continues on labeled + pseudo-labeled faces. Labeled
    faces always train the full PIP task; pseudo-labeled ones train the curriculum's task of the round,
    cycling 1 -> 2 -> 3: the score map max-pooled 4x (task 1), also 2x (task 2), the full task (3).
    """

    unlabeled: str = ""           # folder of images under data_root
    epochs_per_round: int = 5
    exclude_people_of: str = ""   # a folder of NAME_K images: unlabeled frames of those people are left out
                                  # (keeps the people of the test split out of training)


@dataclass
class TrainConfig:
    """Everything one training run depends on; the run directory stores a copy."""

    name: str
    model: dict[str, Any]
    codec: dict[str, Any]
    loss: dict[str, Any]
    input_size: int = 112
    pose_weighting: bool = True   # PFLD's auxiliary pose weighting (models with predicts_pose)
    pose_weight_floor: float = 0.0  # added to PFLD's sum of (1 - cos) terms; 0 = the paper's formula
    class_weighting: bool = True  # PFLD's rare-class weights
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    seed: int = 0
    threads: int = 2
    bf16: bool = False            # bf16 autocast: fast only on CPUs with AVX-512 BF16 / AMX
    data_root: str = "../shared/data"
    init_from: str = ""           # start from this checkpoint's weights (fine-tuning), not from scratch
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    stc: StcConfig = field(default_factory=StcConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise DataError(where, f"unknown config keys {sorted(unknown)} in {cls.__name__}")
    kwargs = {}
    for key, value in values.items():
        if key == "data":
            value = _build(DataConfig, value or {}, where)
        elif key == "augment":
            value = _build(AugmentConfig, value or {}, where)
        elif key == "stc":
            value = _build(StcConfig, value or {}, where)
        elif key == "scale":
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise DataError(where, f"bad config: {e}") from None


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config's values, with ``base: OTHER.yaml`` (relative to the file) read first and overridden.

    Top-level keys replace the base's; ``data``, ``augment`` and ``stc`` are merged key by key, so a variant
    names only what it changes (a model's, codec's or loss's mapping is replaced whole: its keys belong
    together).
    """
    if not path.is_file():
        raise DataError(path, "config file not found")
    if path.resolve() in chain:
        raise DataError(path, "config's base chain loops back to itself")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(path, f"invalid YAML: {e}") from None
    if not isinstance(values, dict):
        raise DataError(path, "config must be a mapping")
    base = values.pop("base", None)
    if base is None:
        return values
    merged = _read_yaml(path.parent / base, chain + (path.resolve(),))
    for key, value in values.items():
        if key in ("data", "augment", "stc") and isinstance(value, dict):
            merged[key] = {**(merged.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML training config (see ``_read_yaml`` for ``base:``)."""
    path = Path(path)
    return _build(TrainConfig, _read_yaml(path), str(path))
