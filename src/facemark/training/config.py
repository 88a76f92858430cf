"""Training configs: plain dataclasses filled from YAML files under configs/, checked as a whole at load.

Each setting is said once: the landmark ``scheme`` (by name) gives the point count, ``dim`` the coordinates per
point, ``input_size`` the crop side, and the ``codec`` its stride and neighbour count; models and losses read
them from there (``ModelSpec``). ``load_config`` builds the model (on the meta device: no weights, no random
numbers drawn), codec, loss and task once, so a mismatch is an error naming the config file and the setting,
not a shape error deep inside the loss.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..core.codecs import build_codec
from ..core.errors import DataError
from ..core.points import check_dim
from ..core.schemes import scheme, scheme_for_points
from ..io.files import default_data_root


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
    occlusion_prob: float = 0.3  # an occluder of 15-40% of the side: rectangle or ellipse; flat colour, noise
                                 # or a patch of the pre-crop (the points it covers are labelled not visible)
    occlusion_parts: float = 0.0  # share of occluders laid over one region of the face (eyes, mouth, ...)
    profile_prob: float = 0.0    # re-render the face turned out of plane (training.profile; iBUG-68 only)
    profile_turn: float = 60.0   # largest turn in degrees (15 to this, away from the frontal view, to |yaw| <= 90)
    profile_pitch: float = 0.0   # profiled faces also tilt up or down by up to this many degrees (uniform +-)


@dataclass
class DataConfig:
    """Where the faces come from. Paths are relative to the config's ``data_root`` (default: ``FACEMARK_DATA``
    where set, else ../shared/data)."""

    train: list = field(default_factory=lambda: ["faces68/train"])  # folders, or dataset specs (io.datasets)
    val: str | dict = "faces68/test/ytf"
    val_norm: str = "iod"         # NME normaliser of the validation metric
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
class DistillConfig:
    """Knowledge distillation (off while ``teachers`` is empty): shipped models label every augmented crop,
    and the student learns from their landmarks as well as from the annotations (training/distill.py)."""

    teachers: list = field(default_factory=list)   # shipped model names or .onnx paths, averaged
    weight: float = 0.5           # the teachers' share of the landmark loss (the annotations get the rest)
    flip: bool = True             # each teacher averages its answer with the mirrored crop's


@dataclass(frozen=True)
class ModelSpec:
    """What a model, codec and task are built for: the settings each of them reads, said once."""

    scheme: str
    n_points: int
    dim: int
    input_size: int
    codec: dict


@dataclass
class TrainConfig:
    """Everything one training run depends on; the run directory stores a copy."""

    name: str
    model: dict[str, Any]
    codec: dict[str, Any]
    loss: dict[str, Any]
    scheme: str = "ibug68"        # landmark layout by name (facemark.core.schemes): the point count, flips, pose
    dim: int = 2                  # coordinates per point: 2 (x, y) or 3 (x, y, z)
    input_size: int = 112
    pose_weighting: bool = False  # PFLD's auxiliary pose weighting (regression models with a pose branch)
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
    data_root: str = field(default_factory=default_data_root)
    init_from: str = ""           # start from this checkpoint's (or exported .onnx's) weights, not from scratch
    train_only: list = field(default_factory=list)  # module names: only these train, the rest stays as loaded
    visibility_weight: float = 1.0  # the visibility loss's weight, for a model with a visibility head
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    stc: StcConfig = field(default_factory=StcConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.scheme, scheme(self.scheme).n_points, self.dim, self.input_size, dict(self.codec))


_SECTIONS = {"data": DataConfig, "augment": AugmentConfig, "stc": StcConfig, "distill": DistillConfig}
# settings that older configs repeated in several places, and where each is said now
_MOVED = {("model", "n_points"): "scheme", ("data", "n_points"): "scheme", ("model", "input_size"): "input_size",
          ("model", "stride"): "codec.stride", ("model", "num_nb"): "codec.num_nb", ("loss", "scale"): "input_size"}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise DataError(where, f"unknown config keys {sorted(unknown)} in {cls.__name__}")
    kwargs = {}
    for key, value in values.items():
        if key in _SECTIONS and cls is TrainConfig:
            value = _build(_SECTIONS[key], value or {}, where)
        elif key == "scale":
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise DataError(where, f"bad config: {e}") from None


def _resolve_paths(values: dict[str, Any], folder: Path) -> None:
    """One rule for the files a config names: ``base``, ``init_from``, ``data_root``, ``data.ignore_boxes`` and
    teachers given as .onnx files are relative to the config's own folder (absolute paths stay); they are
    rewritten relative to the working directory, so a config reads the same from anywhere. Data paths
    (``data.train``, ``data.val``, ``stc.unlabeled``) are relative to ``data_root``."""
    def at(value: Any) -> Any:
        return os.path.normpath(folder / value) if isinstance(value, str) and value else value

    for key in ("base", "init_from", "data_root"):
        if key in values:
            values[key] = at(values[key])
    data, distill = values.get("data"), values.get("distill")
    if isinstance(data, dict) and "ignore_boxes" in data:
        data["ignore_boxes"] = at(data["ignore_boxes"])
    if isinstance(distill, dict) and isinstance(distill.get("teachers"), list):
        distill["teachers"] = [at(t) if str(t).endswith(".onnx") else t for t in distill["teachers"]]


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config's values, with ``base: OTHER.yaml`` read first and overridden; file paths in it are relative to
    the config's folder (``_resolve_paths``).

    Top-level keys replace the base's; ``data``, ``augment``, ``stc`` and ``distill`` are merged key by key, so a variant
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
    _resolve_paths(values, path.parent)
    base = values.pop("base", None)
    if base is None:
        return values
    merged = _read_yaml(Path(base), chain + (path.resolve(),))
    for key, value in values.items():
        if key in _SECTIONS and isinstance(value, dict):
            merged[key] = {**(merged.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def _parse(values: dict[str, Any], where: str) -> TrainConfig:
    for (section, key), now in _MOVED.items():
        if isinstance(values.get(section), dict) and key in values[section]:
            raise DataError(where, f"{section}.{key}: set once, by `{now}` (remove it here)")
    return check(_build(TrainConfig, values, where), where)


def check(cfg: TrainConfig, where: str) -> TrainConfig:
    """Check that the settings fit together; an error names ``where`` (the config file) and the setting."""
    for section in ("model", "codec", "loss"):
        if "name" not in getattr(cfg, section):
            raise DataError(where, f"{section}.name: missing")
    try:
        scheme(cfg.scheme)
        check_dim(cfg.dim)
    except ValueError as e:
        raise DataError(where, f"scheme/dim: {e}") from None
    ibug = scheme(cfg.scheme).shape_points == tuple(range(68))
    if cfg.augment.profile_prob and not ibug:
        raise DataError(where, f"augment.profile_prob: face profiling re-renders iBUG-68 faces, not {cfg.scheme}")
    if cfg.dim == 3 and not ibug:
        raise DataError(where, f"dim: 3D labels come from the iBUG-68 shape model's fit, not from {cfg.scheme}")
    if cfg.train_only and not cfg.init_from:
        raise DataError(where, "train_only: freezing the rest of a model needs init_from (weights to keep)")
    if cfg.visibility_weight < 0:
        raise DataError(where, f"visibility_weight: at least 0, not {cfg.visibility_weight}")
    try:
        codec = build_codec(cfg.codec, cfg.input_size, cfg.spec.n_points, cfg.dim)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(where, f"codec: {e}") from None
    from .tasks import build_task   # torch: only when a config is checked

    build_task(cfg, codec, where).check_config()
    return cfg


def config_from_dict(values: dict[str, Any], where: str) -> TrainConfig:
    """A checked config from a mapping (a YAML file's, or a checkpoint's from an older facemark)."""
    return _parse(_upgrade(values), where)


def _upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints of older facemark versions repeated settings (``_MOVED``) and named PIPNet by backbone:
    read them in today's layout. Configs written by hand get the error of ``check`` instead."""
    data = values.get("data") or {}
    if "scheme" in values or "n_points" not in data:
        return values
    v = {**values, "data": {k: x for k, x in data.items() if k != "n_points"},
         "scheme": scheme_for_points(int(data["n_points"])).name}
    v["model"] = {k: x for k, x in v["model"].items() if k not in ("n_points", "input_size", "stride", "num_nb")}
    v["loss"] = {k: x for k, x in v["loss"].items() if k != "scale"}
    name = v["model"]["name"]
    if name.startswith("pipnet_"):
        backbone = {k: x for k, x in v["model"].items() if k != "name"}
        v["model"] = {"name": "pipnet", "backbone": {"name": name[len("pipnet_"):], **backbone}}
    return v


def config_kind(path: str | Path) -> str:
    """What a config trains: ``landmarks`` (the default), ``detector`` or ``mtcnn`` (its ``kind:``)."""
    return str(_read_yaml(Path(path)).get("kind", "landmarks"))


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a YAML training config (see ``_read_yaml`` for ``base:``)."""
    path = Path(path)
    values = _read_yaml(path)
    kind = values.pop("kind", "landmarks")
    if kind != "landmarks":
        raise DataError(path, f"kind: {kind!r} is not a landmark model's config (facemark train reads both)")
    return _parse(values, str(path))
