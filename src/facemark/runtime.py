"""Shipped models: ONNX files with a JSON card, run by ONNX Runtime (torch is not needed at inference).

A model ``NAME`` is ``weights/NAME.onnx`` plus ``weights/NAME.json`` holding what inference needs (input
size, point count, codec) and what produced it (command, config, data, metrics), and the ONNX file's sha256,
checked at load time.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .codecs import CODECS
from .crop import to_input
from .errors import DataError, FacemarkError
from .schemes import scheme

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "hrnet68"  # what detect, evaluate and Landmarker run unless told otherwise


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def available_models(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the models shipped in (or pointed to by) ``weights_dir``."""
    return sorted(p.stem for p in weights_dir.glob("*.json") if p.with_suffix(".onnx").is_file())


@dataclass
class ModelCard:
    name: str
    n_points: int
    input_size: int
    codec: dict
    sha256: str
    meta: dict


def load_card(name_or_path: str | Path) -> tuple[ModelCard, Path]:
    """The card and ONNX path of a registered name, or of a path to a ``.onnx``/``.json`` pair."""
    p = Path(name_or_path)
    if p.suffix in (".onnx", ".json"):
        card_path, onnx_path = p.with_suffix(".json"), p.with_suffix(".onnx")
    else:
        card_path, onnx_path = WEIGHTS_DIR / f"{name_or_path}.json", WEIGHTS_DIR / f"{name_or_path}.onnx"
        if not card_path.is_file():
            known = ", ".join(available_models()) or "none"
            raise DataError(card_path, f"no model named {name_or_path!r} (shipped models: {known})")
    if not card_path.is_file():
        raise DataError(card_path, "model card (.json) not found")
    if not onnx_path.is_file():
        raise DataError(onnx_path, "model weights (.onnx) not found")
    try:
        meta = json.loads(card_path.read_text())
        card = ModelCard(meta["name"], int(meta["n_points"]), int(meta["input_size"]), meta["codec"],
                         meta["sha256"], meta)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(card_path, f"malformed model card ({e.__class__.__name__}: {e})") from None
    return card, onnx_path


class OnnxLandmarkModel:
    """A shipped landmark model: RGB uint8 crops in, crop-pixel landmarks out.

    ``flip=True`` also runs each crop mirrored and averages the two answers (test-time augmentation:
    twice the cost, usually a little more accurate). ``decoder`` replaces the card's heatmap decoder
    (``argmax``, ``quarter``, ``soft_argmax``): the same network read out differently, for ablations.
    """

    def __init__(self, name_or_path: str | Path = DEFAULT_MODEL, threads: int | None = None, flip: bool = False,
                 decoder: str | None = None) -> None:
        import onnxruntime as ort

        self.card, path = load_card(name_or_path)
        digest = sha256_of(path)
        if digest != self.card.sha256:
            raise DataError(path, f"sha256 mismatch (file {digest[:12]}..., card {self.card.sha256[:12]}...): "
                                  "corrupt or replaced weights")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise DataError(path, f"cannot load ONNX model ({e})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.flip = flip
        self.scheme = scheme(self.card.n_points)
        kw = {k: v for k, v in self.card.codec.items() if k != "name"}
        if decoder is not None:
            if "decoder" not in kw:
                raise FacemarkError(f"model {self.card.name!r} uses the {self.card.codec['name']!r} codec, "
                                    "which has no choice of decoder")
            kw["decoder"] = decoder
        try:
            self.codec = CODECS.build(self.card.codec["name"], input_size=self.card.input_size,
                                      n_points=self.card.n_points, **kw)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(path.with_suffix(".json"), f"bad codec in model card: {e}") from None

    @property
    def input_size(self) -> int:
        return self.card.input_size

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) RGB uint8 crops -> (B, N, 2) landmarks in crop pixels."""
        if len(crops) == 0:
            return np.zeros((0, self.card.n_points, 2))
        pts = self._run(crops)
        if self.flip:
            mirrored = self._run(np.ascontiguousarray(crops[:, :, ::-1]))
            pts = (pts + self.scheme.flip_points(mirrored, self.input_size)) / 2
        return pts

    def _run(self, crops: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: to_input(crops)})
        return self.codec.decode(out[0] if len(out) == 1 else tuple(out))
