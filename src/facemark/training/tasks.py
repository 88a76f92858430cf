"""Tasks: what one kind of model output trains on, so the trainer never asks which model family it runs.

A task owns its codec (targets in, points out), the extra targets it needs (PFLD's head-pose angles, STC's
curriculum level, the visibility a model with a visibility head learns), the training forward, the per-sample
loss and the per-sample weights, and checks at
config load that model, codec and loss fit together. Tasks are found by codec name (``TASKS``): a new kind of
output (a detector's boxes and scores, say) is a codec plus a task.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn

from ..core.boundaries import boundary_maps, tangents
from ..core.codecs import to_grid
from ..core.errors import DataError
from ..core.pose import head_poses
from ..core.shape3d import ANNOTATED
from ..core.registry import Registry
from ..core.schemes import scheme
from .distill import Teacher
from .losses import build_loss, direction_loss, local_soft_argmax, pfld_weights, visibility_loss
from .models import build_model

if TYPE_CHECKING:  # config.check builds tasks: the type only, no import at run time
    from .config import TrainConfig

TASKS: Registry = Registry("task")


class Task:
    """Base: the codec's targets, the model's ``out``, the configured loss, the data's sample weights."""

    curriculum = False   # trains STC's per-sample curriculum levels

    def __init__(self, cfg: TrainConfig, codec, where: str) -> None:
        self.cfg, self.codec, self.where = cfg, codec, where
        self.scheme = scheme(cfg.scheme)
        try:
            self.loss_fn = build_loss(self.loss_settings())
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(where, f"loss: {e}") from None
        d = cfg.distill
        if d.teachers and not 0.0 < d.weight <= 1.0:
            raise DataError(where, f"distill.weight: the teachers' share is in (0, 1], not {d.weight}")
        self.teacher = Teacher(d.teachers, d.flip, cfg.scheme, where) if d.teachers else None
        self.visibility = bool(cfg.model.get("visibility"))

    def loss_settings(self) -> dict:
        return dict(self.cfg.loss)

    def build_model(self) -> nn.Module:
        try:
            return build_model(self.cfg.spec, self.cfg.model)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(self.where, f"model: {e}") from None

    def check_config(self) -> None:
        """Build the model without weights (meta device) and compare its outputs with what the codec decodes."""
        cfg = self.cfg
        if cfg.stc.unlabeled and not (self.curriculum and cfg.init_from):
            raise DataError(self.where, "stc: STC needs a PIPNet (codec: pip) and init_from: a trained checkpoint "
                                        "to pseudo-label with")
        with torch.device("meta"):
            model = self.build_model().eval()
            out = model(torch.zeros(1, 3, cfg.input_size, cfg.input_size))
        got = [tuple(o.shape[1:]) for o in (out if isinstance(out, tuple) else (out,))]
        if self.visibility:   # the last output is the visibility; the codec decodes the others
            got = got[:-1] if len(got) > 1 and got[-1] == (cfg.spec.n_points,) else got + ["no visibility"]
        want = self.codec.output_shapes()
        if got != want:
            raise DataError(self.where, f"model: {cfg.model['name']} gives outputs {got} for a {cfg.input_size} px "
                                        f"input; the {cfg.codec['name']} codec decodes {want}")
        names = dict(model.named_modules())
        for name in cfg.train_only:
            if not name or name not in names:
                raise DataError(self.where, f"train_only: {cfg.model['name']} has no module {name!r}")
        self.check_model(model)

    def check_model(self, model: nn.Module) -> None:
        """Family-specific requirements on the model (a pose branch, an output bias)."""

    def prepare(self, model: nn.Module, train_pts: np.ndarray, fresh: bool) -> None:
        """Learn what the codec needs from the training landmarks (in crop pixels); ``fresh``: the model has
        not been trained yet, so its output may be initialised from the data."""

    def init_weights(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Start from another run's weights (``init_from``)."""
        model.load_state_dict(state)

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        """The codec's targets of (B, N, D) crop points, by name."""
        return {"target": self.codec.encode(pts)}

    def targets(self, pts: np.ndarray, extras: dict[str, np.ndarray], crops: np.ndarray) -> dict[str, np.ndarray]:
        """A batch's targets from its augmented (B, N, D) crop points, per-sample ``extras`` and the (B, S, S, 3)
        crops themselves (which a distillation teacher labels: its targets are named ``teacher.*``)."""
        t = self.encode(pts)
        if self.visibility:
            t["visible"] = extras["visible"].astype(np.float32)
        if self.teacher is not None:
            t.update({f"teacher.{k}": v for k, v in self.encode(self.teacher(crops)).items()})
        return t

    def outputs(self, model: nn.Module, x: torch.Tensor) -> dict:
        """The training outputs of ``model``: the engine's training forward (``engine.TrainingForward``)."""
        return model(x)

    def loss(self, out: dict, t: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) per-sample loss; with a teacher, its share ``distill.weight`` is the loss on its targets; with a
        visibility head, plus ``visibility_weight`` times its loss."""
        if self.teacher is None:
            points = self.loss_on(out, t)
        else:
            own = {k: v for k, v in t.items() if not k.startswith("teacher.")}
            taught = {**own, **{k[len("teacher."):]: v for k, v in t.items() if k.startswith("teacher.")}}
            w = self.cfg.distill.weight
            points = (1.0 - w) * self.loss_on(out, own) + w * self.loss_on(out, taught)
        if not self.visibility:
            return points
        return points + self.cfg.visibility_weight * visibility_loss(out["visibility"], t["visible"])

    def loss_on(self, out: dict, t: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) per-sample loss against one set of targets."""
        return self.loss_fn(out["out"], t["target"])

    def weights(self, out: dict, t: dict[str, torch.Tensor], class_weight: torch.Tensor) -> torch.Tensor:
        """(B,) per-sample weights of the loss."""
        return class_weight


@TASKS.register("regression")
class RegressionTask(Task):
    """Coordinates regressed directly (PFLD). The point loss works in crop pixels (its ``scale`` is the input
    size); with ``pose_weighting`` the model's auxiliary head-pose angles weight each sample as PFLD does."""

    def loss_settings(self) -> dict:
        return {**self.cfg.loss, "scale": self.cfg.input_size}

    def check_model(self, model: nn.Module) -> None:
        if not hasattr(model, "init_output_bias"):
            raise DataError(self.where, f"model: {self.cfg.model['name']} is no regression model "
                                        "(no output to start from the mean face)")
        if self.cfg.pose_weighting and not getattr(model, "predicts_pose", False):
            raise DataError(self.where, f"pose_weighting: model {self.cfg.model['name']!r} has no pose branch")
        if self.cfg.pose_weighting and not self.scheme.shape_points:
            raise DataError(self.where, f"pose_weighting: scheme {self.scheme.name} has no head-pose points")

    def prepare(self, model: nn.Module, train_pts: np.ndarray, fresh: bool) -> None:
        if fresh:  # start from the mean face: the crop framing makes it a good first guess for every sample
            model.init_output_bias(torch.from_numpy(self.codec.encode(train_pts).mean(0)))

    def init_weights(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """As the base, and a 2D run can start a 3D one: the output's x and y rows are copied, z starts at 0."""
        n = self.scheme.n_points
        own = model.state_dict()
        for k, v in state.items():
            if k in own and v.shape != own[k].shape and v.shape[0] == 2 * n and own[k].shape[0] == 3 * n:
                grown = torch.zeros_like(own[k]).view(n, 3, *own[k].shape[1:])
                grown[:, :2] = v.view(n, 2, *v.shape[1:])
                state = {**state, k: grown.view(own[k].shape)}
        model.load_state_dict(state)

    def targets(self, pts: np.ndarray, extras: dict[str, np.ndarray], crops: np.ndarray) -> dict[str, np.ndarray]:
        t = super().targets(pts, extras, crops)
        if self.cfg.pose_weighting:
            t["angles"] = np.deg2rad(head_poses(pts, self.scheme.name, ANNOTATED)).astype(np.float32)
        return t

    def weights(self, out: dict, t: dict[str, torch.Tensor], class_weight: torch.Tensor) -> torch.Tensor:
        if not self.cfg.pose_weighting:
            return class_weight
        return pfld_weights(out["angles"], t["angles"], class_weight, self.cfg.pose_weight_floor)


@TASKS.register("anchors")
class AnchorTask(Task):
    """AnchorFace: the codec's anchors come from the training faces (k-means); the model regresses each
    anchor's offsets and score; the loss is the anchors loss (``losses.AnchorLoss``, in crop pixels)."""

    def loss_settings(self) -> dict:
        return {**self.cfg.loss, "scale": self.cfg.input_size}

    def check_model(self, model: nn.Module) -> None:
        if not hasattr(model, "init_output_bias"):
            raise DataError(self.where, f"model: {self.cfg.model['name']} is no regression model")
        if self.cfg.loss.get("name") != "anchors" or self.cfg.pose_weighting:
            raise DataError(self.where, "loss: the anchors codec trains with the anchors loss, no pose_weighting")

    def prepare(self, model: nn.Module, train_pts: np.ndarray, fresh: bool) -> None:
        if self.codec.anchors is None:
            self.codec.fit(train_pts)
        self.anchors = torch.from_numpy(self.codec.encoded_anchors()).float()
        if fresh:   # every anchor starts unrefined and equally likely
            model.init_output_bias(torch.zeros(self.codec.output_shapes()[0]))

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        return self.codec.encode(pts)

    def loss_on(self, out: dict, t: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.loss_fn(out["out"], t, self.anchors)


@TASKS.register("cascade")
class CascadeTask(Task):
    """A regressor cascade (SPIGA on a heatmap backbone, DCNN): every step's points and the backbone's heatmaps,
    where it has them, train (``losses.CascadeLoss``, in crop pixels); the cascade starts from the mean training
    face."""

    def loss_settings(self) -> dict:
        return {**self.cfg.loss, "scale": self.cfg.input_size}

    def check_model(self, model: nn.Module) -> None:
        if not hasattr(model, "init_output_bias") or self.cfg.loss.get("name") != "cascade":
            raise DataError(self.where, "model/loss: the cascade codec trains a cascade model (spiga, dcnn) with "
                                        "the cascade loss")
        with torch.device("meta"):
            maps = "heatmaps" in model.forward_train(torch.zeros(1, 3, self.cfg.input_size, self.cfg.input_size))
        if maps != (self.codec.maps is not None):
            raise DataError(self.where, f"codec.heatmaps: set it to {maps} for {self.cfg.model['name']}")

    def prepare(self, model: nn.Module, train_pts: np.ndarray, fresh: bool) -> None:
        if fresh:
            model.init_output_bias(torch.from_numpy(self.codec.encode(train_pts)["target"].mean(0)))

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        return self.codec.encode(pts)

    def loss_on(self, out: dict, t: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.loss_fn(out["steps"], out.get("heatmaps"), t)


@TASKS.register("heatmap")
class HeatmapTask(Task):
    """Heatmaps (Hourglass, HRNet); a model that returns every stack's maps is supervised on each.

    Two optional terms, set in the loss mapping beside the heatmap loss's own settings: ``boundary_weight``
    for a model with boundary heatmaps (``model.boundaries``: the same heatmap loss on them, against the
    scheme's curves drawn by ``core.boundaries``; 0 trains the same network without boundary targets, the
    ablation), and ``direction_weight`` (with ``tangent_weight``): ADNet's
    anisotropic direction loss on the points the last heatmaps decode to by the codec's local soft-argmax."""

    TERMS = {"boundary_weight": 0.0, "direction_weight": 0.0, "tangent_weight": 0.5}

    def __init__(self, cfg: TrainConfig, codec, where: str) -> None:
        super().__init__(cfg, codec, where)
        self.terms = {k: float(cfg.loss.get(k, v)) for k, v in self.TERMS.items()}
        self.boundaries = bool(cfg.model.get("boundaries")) and self.terms["boundary_weight"] > 0
        if self.terms["boundary_weight"] and not cfg.model.get("boundaries"):
            raise DataError(where, "loss.boundary_weight: the model has no boundary heatmaps (model.boundaries)")
        if self.terms["direction_weight"] and not self.scheme.boundaries:
            raise DataError(where, f"loss.direction_weight: scheme {self.scheme.name} defines no boundaries")

    def loss_settings(self) -> dict:
        return {k: v for k, v in self.cfg.loss.items() if k not in self.TERMS}

    def check_model(self, model: nn.Module) -> None:
        if self.cfg.pose_weighting:
            raise DataError(self.where, "pose_weighting: only regression models have a pose branch")

    def targets(self, pts: np.ndarray, extras: dict[str, np.ndarray], crops: np.ndarray) -> dict[str, np.ndarray]:
        t = super().targets(pts, extras, crops)
        c = self.codec
        if self.boundaries:
            t["boundary"] = boundary_maps(pts, self.scheme, c.size, c.stride)
        if self.terms["direction_weight"]:
            t["cells"] = to_grid(pts, c.stride).astype(np.float32)
            t["tangent"] = tangents(pts, self.scheme).astype(np.float32)
        return t

    def loss(self, out: dict, t: dict[str, torch.Tensor]) -> torch.Tensor:
        total = super().loss(out, t)
        w = self.terms
        if self.boundaries:
            total = total + w["boundary_weight"] * self.loss_fn(out["boundary"], t["boundary"])
        if w["direction_weight"]:
            maps = out["out"][-1] if isinstance(out["out"], list) else out["out"]
            c = self.codec
            pred = local_soft_argmax(maps, c.window, c.tau)
            total = total + w["direction_weight"] * direction_loss(pred, t["cells"], t["tangent"],
                                                                   w["tangent_weight"])
        return total


@TASKS.register("hih")
class HIHTask(HeatmapTask):
    """HIH: the codec's heatmaps, offsets and offset mask as targets; the model's ``offsets`` beside its maps."""

    def check_model(self, model: nn.Module) -> None:
        super().check_model(model)
        if self.cfg.loss.get("name") != "hih":
            raise DataError(self.where, "loss: the hih codec trains with the hih loss (heatmaps and offsets)")

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        return self.codec.encode(pts)

    def loss_on(self, out: dict, t: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.loss_fn(out["out"], out["offsets"], t)


@TASKS.register("pip")
class PIPTask(HeatmapTask):
    """PIPNet's score, offset and neighbour maps. The codec's neighbours come from the training landmarks;
    with STC, pseudo-labeled faces carry a curriculum ``level`` and the model's ``coarse`` score maps train."""

    curriculum = True

    def prepare(self, model: nn.Module, train_pts: np.ndarray, fresh: bool) -> None:
        self.codec.fit(train_pts)

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        return self.codec.encode(pts)

    def targets(self, pts: np.ndarray, extras: dict[str, np.ndarray], crops: np.ndarray) -> dict[str, np.ndarray]:
        t = super().targets(pts, extras, crops)
        if "level" in extras:
            t["level"] = extras["level"]
        return t

    def loss_on(self, out: dict, t: dict[str, torch.Tensor]) -> torch.Tensor:
        if "level" in t:
            return self.loss_fn(out["out"], t, out["coarse"], t["level"])
        return self.loss_fn(out["out"], t)


def build_task(cfg: TrainConfig, codec, where: str) -> Task:
    """The task of a config's codec."""
    if cfg.codec["name"] not in TASKS:
        raise DataError(where, f"codec: no training task for codec {cfg.codec['name']!r} "
                               f"(known: {', '.join(TASKS.names())})")
    return TASKS.build(cfg.codec["name"], cfg=cfg, codec=codec, where=where)
