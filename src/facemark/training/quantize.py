"""Static int8 quantisation of a shipped model (``facemark quantize``): QDQ, per-channel weights, activations
calibrated on training crops framed exactly as the model sees them.

Weights are quantised to 7 bits (ONNX Runtime's ``reduce_range``): without VNNI, x86 int8 kernels add pairs of
uint8 x int8 products into 16 bits, which saturate with 8-bit weights (an AVX2 CPU scored 4.02% where a VNNI one
scored 3.85% with the same file); with 7-bit weights the sums fit, so the int8 model gives the same points on
every CPU and ``facemark quantize`` can be judged on any machine, for a few hundredths of a percent of NME.

Two ways to set the activations' ranges: ``minmax`` (the largest value seen) and ``percentile`` (the 99.99th
percentile of the values seen, so a few outliers do not stretch the range, which helps heatmap models).
``best`` makes both and keeps the one whose landmarks are nearer the annotations on held-aside training faces
(not the calibration ones); the card records both errors. The int8 file ships beside the fp32 one
(``NAME.int8.onnx``); at load, ONNX Runtime gets the int8 file where the CPU has int8 dot-product instructions
(VNNI / AMX) and the fp32 file elsewhere, where int8 runs slower (``inference.runtime.cpu_has_int8_dot``).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..core.crop import crop_from_landmarks, to_input
from ..core.errors import DataError, FacemarkError
from ..evaluation.metrics import nme
from ..evaluation.protocols import predict_with_landmark_boxes
from ..inference.runtime import OnnxLandmarkModel, load_card, sha256_of
from ..io.datasets import FaceSample

METHODS = ("minmax", "percentile")
PERCENTILE = 99.99


def calibration_batches(samples: list[FaceSample], size: int, batch: int = 16) -> list[np.ndarray]:
    """Model inputs (B, 3, S, S) of the samples' crops, framed by their landmarks."""
    crops = [crop_from_landmarks(s.landmarks, size) for s in samples]
    pixels = np.stack([c.warp(s.load_image()) for c, s in zip(crops, samples)])
    return [to_input(pixels[i:i + batch]) for i in range(0, len(pixels), batch)]


def _mean_nme(onnx_path: Path, precision: str, faces: list[FaceSample]) -> float:
    """Mean inter-ocular NME of a model (an .onnx beside its card) on faces cropped by their landmarks."""
    model = OnnxLandmarkModel(onnx_path, threads=None, precision=precision)
    gt = np.stack([s.landmarks for s in faces])
    return float(nme(predict_with_landmark_boxes(model, faces)[..., :2], gt[..., :2], "iod").mean())


def quantize(name_or_path: str | Path, samples: list[FaceSample], note: str, method: str = "best",
             held_aside: list[FaceSample] | None = None) -> Path:
    """Write the int8 variant of a model beside it and record it in its card; returns the int8 path.

    ``note`` says where the calibration faces came from (stored in the card); ``method``: ``minmax``,
    ``percentile`` or ``best`` (both, the one with the lower NME on ``held_aside`` kept). Nothing is
    written on failure.
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in (*METHODS, "best"):
        raise FacemarkError(f"quantisation method {method!r}: one of {', '.join(METHODS)}, best")
    if method == "best" and not held_aside:
        raise FacemarkError("quantisation method 'best' needs held-aside faces to compare the methods on")
    card, onnx_path = load_card(name_or_path)
    batches = calibration_batches(samples, card.input_size)
    options = {"minmax": {},
               "percentile": {"calibrate_method": CalibrationMethod.Percentile,
                              "extra_options": {"CalibPercentile": PERCENTILE}}}

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter({"image": b} for b in batches)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    out = onnx_path.with_name(f"{onnx_path.stem}.int8.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pre = tmp / "pre.onnx"
        quant_pre_process(str(onnx_path), str(pre))
        shutil.copy(onnx_path, tmp / "m.onnx")
        made, errors = {}, {}
        for m in METHODS if method == "best" else (method,):
            q = tmp / f"{m}.onnx"
            quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            **options[m])
            if not q.is_file():
                raise DataError(onnx_path, "int8 quantisation wrote no model")
            made[m] = q
            if held_aside:   # score this variant through a temporary card that names it
                meta = dict(card.meta, int8={"file": q.name, "sha256": sha256_of(q)})
                (tmp / "m.json").write_text(json.dumps(meta))
                errors[m] = _mean_nme(tmp / "m.onnx", "int8", held_aside)
        chosen = min(errors, key=errors.get) if method == "best" else method
        meta = dict(card.meta)
        meta["int8"] = {"file": out.name, "sha256": sha256_of(made[chosen]), "calibration": note,
                        "scheme": f"static QDQ: per-channel 7-bit int8 weights (reduce_range), uint8 activations ({chosen}"
                                  f"{f' {PERCENTILE}' if chosen == 'percentile' else ''})"}
        if held_aside:
            meta["int8"]["held_aside"] = {"faces": len(held_aside), "norm": "iod",
                                          "nme_fp32": _mean_nme(onnx_path, "fp32", held_aside),
                                          **{f"nme_{m}": e for m, e in errors.items()}}
        made[chosen].replace(out)
    onnx_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
