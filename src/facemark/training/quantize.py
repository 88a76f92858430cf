"""Static int8 quantisation of a shipped model (``facemark quantize``): QDQ, per-channel weights, activations
calibrated on training crops framed exactly as the model sees them.

The int8 file ships beside the fp32 one (``NAME.int8.onnx``) and the card records it; at load, ONNX Runtime
gets the int8 file where the CPU has int8 dot-product instructions (VNNI / AMX) and the fp32 file elsewhere,
where int8 runs slower (``inference.runtime.cpu_has_int8_dot``).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from ..core.crop import crop_from_landmarks, to_input
from ..core.errors import DataError
from ..inference.runtime import load_card, sha256_of
from ..io.datasets import FaceSample


def calibration_batches(samples: list[FaceSample], size: int, batch: int = 16) -> list[np.ndarray]:
    """Model inputs (B, 3, S, S) of the samples' crops, framed by their landmarks."""
    crops = [crop_from_landmarks(s.landmarks, size) for s in samples]
    pixels = np.stack([c.warp(s.load_image()) for c, s in zip(crops, samples)])
    return [to_input(pixels[i:i + batch]) for i in range(0, len(pixels), batch)]


def quantize(name_or_path: str | Path, samples: list[FaceSample], note: str) -> Path:
    """Write the int8 variant of a model beside it and record it in its card; returns the int8 path.

    ``note`` says where the calibration faces came from (stored in the card). Nothing is written on failure.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    card, onnx_path = load_card(name_or_path)
    batches = calibration_batches(samples, card.input_size)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter({"image": b} for b in batches)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    out = onnx_path.with_name(f"{onnx_path.stem}.int8.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        pre, q = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(onnx_path), str(pre))
        quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        if not q.is_file():
            raise DataError(onnx_path, "int8 quantisation wrote no model")
        meta = dict(card.meta)
        meta["int8"] = {"file": out.name, "sha256": sha256_of(q), "calibration": note,
                        "scheme": "static QDQ: per-channel int8 weights, uint8 activations (MinMax)"}
        q.replace(out)
    onnx_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
