"""Evaluation protocols: how a model meets annotated faces.

The standard protocol crops each face from the box of its ground-truth landmarks, so no detector is in the
loop and models are compared on their landmarks alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.crop import crop_from_landmarks
from ..core.errors import DataError
from ..core.schemes import convert
from ..core.pose import head_poses
from ..io.datasets import FaceSample, PoseSample, read_pts_folder, read_wflw
from ..inference.predictor import CropPredictor, predict, predict_analysed
from ..inference.runtime import OnnxLandmarkModel
from .metrics import nme


def predict_with_landmark_boxes(model: CropPredictor, samples: list[FaceSample], chunk: int = 64) -> np.ndarray:
    """(M, N, D) predictions for annotated faces, each cropped from its ground-truth landmarks' box."""
    return predict_with_uncertainty(model, samples, chunk, uncertainty=False)[0]


def predict_with_uncertainty(model: CropPredictor, samples: list[FaceSample], chunk: int = 64,
                             uncertainty: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict_with_landmark_boxes``'s predictions and (M, N) each point's expected error in image pixels, for
    a model with a calibrated uncertainty (else None; and never read without ``uncertainty``)."""
    preds, uncs = [], []
    for i in range(0, len(samples), chunk):   # one image decoded at a time, a chunk of crops per model call
        part = samples[i:i + chunk]
        crops = [crop_from_landmarks(s.landmarks, model.input_size) for s in part]
        images = [s.load_image() for s in part]
        if uncertainty:
            a = predict_analysed(model, images, crops)
            preds.append(a.points)
            uncs.append(a.uncertainty)
        else:
            preds.append(predict(model, images, crops))
            uncs.append(None)
    return np.concatenate(preds), None if any(u is None for u in uncs) else np.concatenate(uncs)


def evaluate_model(model: str | Path, gt_dir: Path, threads: int | None = None, flip: bool = False,
                   decoder: str | None = None, precision: str = "fp32") -> tuple[list, list, np.ndarray | None]:
    """Run ``model`` on a 300W-layout folder with boxes from the ground-truth landmarks.

    Returns (ground truths, predictions), each a list of (N, D) arrays in file order, and (M, N) the expected
    point errors where the model has a calibrated uncertainty (else None).
    """
    lm = OnnxLandmarkModel(model, threads=threads, flip=flip, decoder=decoder, precision=precision)
    samples = read_pts_folder(gt_dir, lm.scheme.n_points)
    pred, unc = predict_with_uncertainty(lm, samples)
    return [s.landmarks for s in samples], list(pred), unc


def evaluate_wflw(model: str | Path, lists: dict[str, Path], images: Path, threads: int | None = None,
                  flip: bool = False, decoder: str | None = None,
                  precision: str = "fp32") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run ``model`` on WFLW's test lists (``io.datasets.wflw_test_lists``), boxes from the ground truth:
    (ground truths, predictions) per list. A model of another scheme is scored on the ground truth converted
    to its points (98 -> 68 keeps the outer eye corners, so the inter-ocular norm is WFLW's)."""
    lm = OnnxLandmarkModel(model, threads=threads, flip=flip, decoder=decoder, precision=precision)
    out = {}
    for name, path in lists.items():
        samples = read_wflw(path, images)
        if not samples:
            raise DataError(path, "no faces in this list")
        try:
            gt = convert(np.stack([s.landmarks for s in samples]), lm.scheme.name, "wflw98")
        except ValueError as e:
            raise DataError(path, f"cannot score a {lm.scheme.name} model on WFLW: {e}") from None
        framed = [FaceSample(s.image, g) for s, g in zip(samples, gt)]
        out[name] = (gt, predict_with_landmark_boxes(lm, framed))
    return out


YAW_BINS = ((0, 30), (30, 60), (60, 90))


HALVES = ("even", "odd")


def evaluate_pose(samples: list[PoseSample], model: str | Path | None = None, threads: int | None = None,
                  precision: str = "fp32", flip: bool = False, half: str | None = None) -> dict:
    """Head pose and large-pose landmarks on AFLW2000-3D-style faces (``io.datasets.read_aflw2000``).

    The standard protocol drops faces with an angle beyond 99 degrees, crops each face from its annotated
    landmarks' box, and reports the mean absolute error of yaw, pitch and roll (from the 3D shape-model fit,
    ``facemark.core.pose``) and their mean; the 2D NME over
    the box size (sqrt(w * h) of the ground-truth landmarks' box) against the 2D re-annotation and against the
    3D fit's x, y, in |yaw| bins 0-30, 30-60, 60-90 and their mean (3DDFA's balanced figure); for a model that
    predicts depth, the 3D NME (distance to the fitted 3D points, z of both centred, over the same size). Without a model,
    the pose comes from the annotated 2D landmarks: the pose method alone. ``half="even"`` keeps the kept faces
    at even positions in file-name order (the half the shape model is built from, used for validation), ``"odd"``
    the others.
    """
    kept = sorted((s for s in samples if max(abs(v) for v in s.pose.values()) <= 99), key=lambda s: s.image.name)
    dropped = len(samples) - len(kept)
    if half is not None:
        kept = kept[HALVES.index(half)::2]
    if not kept:
        raise DataError(samples[0].image if samples else "<none>", "no face within 99 degrees")
    if model is not None:
        lm = OnnxLandmarkModel(model, threads=threads, precision=precision, flip=flip)
        pred = predict_with_landmark_boxes(lm, [FaceSample(s.image, s.landmarks) for s in kept])
    else:
        pred = np.stack([s.landmarks for s in kept])
    got = head_poses(pred, "ibug68")
    want = np.array([[s.pose["yaw"], s.pose["pitch"], s.pose["roll"]] for s in kept])
    err = np.abs(got - want)
    report = {"faces": len(kept), "dropped": dropped, "model": str(model) if model else None,
              "flip": flip, "half": half, "precision": precision,
              "mae": {"yaw": float(err[:, 0].mean()), "pitch": float(err[:, 1].mean()),
                      "roll": float(err[:, 2].mean()), "mean": float(err.mean())}}
    yaw = np.abs(want[:, 0])
    for name, gt in (("nme_2d", np.stack([s.landmarks for s in kept])),
                     ("nme_3d_xy", np.stack([s.landmarks_3d[:, :2] for s in kept]))):
        e = nme(pred[..., :2], gt, "box")
        bins = {f"{a}-{b}": float(e[(yaw >= a) & (yaw <= b if b == 90 else yaw < b)].mean())
                for a, b in YAW_BINS if ((yaw >= a) & (yaw <= b if b == 90 else yaw < b)).any()}
        report[name] = {"all": float(e.mean()), **bins, "balanced": float(np.mean(list(bins.values())))}
    if pred.shape[-1] == 3:   # depth too: 3D distance to the fitted 3D points (z of both centred), over the box size
        gt3 = np.stack([s.landmarks_3d for s in kept])
        size = np.sqrt(np.prod(np.ptp(np.stack([s.landmarks for s in kept]), axis=1), axis=1))
        e = np.linalg.norm(pred - gt3, axis=2).mean(axis=1) / size
        report["nme_3d"] = {"all": float(e.mean())}
    return report
