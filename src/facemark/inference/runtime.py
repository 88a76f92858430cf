"""Shipped models: ONNX files with a JSON card, run by ONNX Runtime (torch is not needed at inference).

A model ``NAME`` is ``weights/NAME.onnx`` plus ``weights/NAME.json`` holding what inference needs (input
size, landmark scheme by name, point dimension, codec) and what produced it (command, config, data,
metrics), and the ONNX file's sha256, checked at load time. Cards written before schemes had names carry
only ``n_points``; they are read as the scheme with that many points, in 2D.

A card may also list an int8 variant (``NAME.int8.onnx``, ``facemark quantize``): ``precision="auto"`` loads
it where the CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX), where it is faster, and
the fp32 file elsewhere, where int8 is slower than fp32.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.codecs import build_codec, decoders_of
from ..core.crop import to_input
from ..core.errors import ArgumentError, DataError, FacemarkError
from ..core.schemes import Scheme, scheme, scheme_for_points
from ..core.uncertainty import Calibration
from .predictor import Analysis

WEIGHTS_DIR = Path(__file__).parents[1] / "weights"
DEFAULT_MODEL = "hrnet68_pose"  # what detect, evaluate and Landmarker run unless told otherwise


def cpu_session(path: Path, threads: int | None = 0, fixed: dict[str, int] | None = None):
    """An ONNX Runtime CPU session of ``path`` on ``threads`` intra-op threads (0: its default), with the named
    free input dimensions of ``fixed`` set to those sizes; an unreadable model is a DataError naming the file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    for name, size in (fixed or {}).items():
        opts.add_free_dimension_override_by_name(name, size)
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable models
        raise DataError(path, f"cannot load ONNX model ({e})") from None


class ClassicalSession:
    """An ONNX Runtime session's face for a classical model (a ``.npz`` of ``core.asm`` or ``core.aam``), so
    that ``OnnxLandmarkModel`` runs it like any other: it takes the models' input (``to_input``: back to uint8
    crops, exactly) and gives the regression codec's output (points as fractions of the crop)."""

    @dataclass
    class Port:
        name: str
        shape: list

    def __init__(self, path: Path) -> None:
        from ..core.aam import ActiveAppearanceModel
        from ..core.asm import ActiveShapeModel

        try:
            with np.load(path) as z:
                arrays = dict(z)
            self.model = {"asm": ActiveShapeModel, "aam": ActiveAppearanceModel}[str(arrays["kind"])].from_arrays(arrays)
        except (OSError, KeyError, ValueError) as e:
            raise DataError(path, f"cannot load the classical model ({e.__class__.__name__}: {e})") from None
        self.codec = build_codec({"name": "regression"}, self.model.size, len(self.model.mean))

    def get_inputs(self) -> list[Port]:
        # no named batch dimension: no second, single-face session is made for it (the fit has no shape
        # arithmetic to spare, and loading an AAM computes its fitting terms)
        return [self.Port("image", [None, 3, self.model.size, self.model.size])]

    def get_outputs(self) -> list[Port]:
        return [self.Port("output", [None, 2 * len(self.model.mean)])]

    def run(self, names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = next(iter(feeds.values()))
        crops = np.clip(np.rint(x.transpose(0, 2, 3, 1) * 127.5 + 127.5), 0, 255).astype(np.uint8)
        return [self.codec.encode(self.model(crops))]


def model_session(path: Path, threads: int | None = 0, fixed: dict[str, int] | None = None):
    """A landmark model's session: ONNX Runtime's for an ``.onnx`` file, ``ClassicalSession`` for a ``.npz``
    (which runs on one thread, whatever ``threads`` says)."""
    return ClassicalSession(path) if path.suffix == ".npz" else cpu_session(path, threads, fixed)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


PRECISIONS = ("auto", "fp32", "int8")


@functools.lru_cache(maxsize=1)
def cpu_has_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI or AMX), read from /proc/cpuinfo (Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def available_models(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the models shipped in (or pointed to by) ``weights_dir``: cards beside their weights (``.onnx``,
    or the file a card names as its ``weights``)."""
    return sorted(p.stem for p in weights_dir.glob("*.json") if _weights_of(p).is_file())


def _weights_of(card_path: Path) -> Path:
    """The weights file of a card: ``NAME.onnx`` beside it, unless the card names another (``weights``)."""
    try:
        named = json.loads(card_path.read_text()).get("weights")
    except (OSError, json.JSONDecodeError, AttributeError):
        named = None
    return card_path.with_name(named) if isinstance(named, str) else card_path.with_suffix(".onnx")


@dataclass
class ModelCard:
    """What a shipped model needs at inference; ``meta`` is the whole card (provenance, metrics)."""

    name: str
    scheme: str
    dim: int
    input_size: int
    codec: dict
    sha256: str
    meta: dict

    @property
    def n_points(self) -> int:
        return scheme(self.scheme).n_points


def load_card(name_or_path: str | Path) -> tuple[ModelCard, Path]:
    """The card and weights path (ONNX, or a classical model's ``.npz``) of a registered name, or of a path to a
    card or its weights."""
    p = Path(name_or_path)
    if p.suffix in (".onnx", ".json", ".npz"):
        card_path = p.with_suffix(".json")
    else:
        card_path = WEIGHTS_DIR / f"{name_or_path}.json"
        if not card_path.is_file():
            known = ", ".join(available_models()) or "none"
            raise DataError(card_path, f"no model named {name_or_path!r} (shipped models: {known})")
    if not card_path.is_file():
        raise DataError(card_path, "model card (.json) not found")
    onnx_path = _weights_of(card_path)
    if not onnx_path.is_file():
        raise DataError(onnx_path, f"model weights ({onnx_path.suffix}) not found")
    try:
        meta = json.loads(card_path.read_text())
        layout = meta["scheme"] if "scheme" in meta else scheme_for_points(int(meta["n_points"])).name
        card = ModelCard(meta["name"], scheme(layout).name, int(meta.get("dim", 2)), int(meta["input_size"]),
                         meta["codec"], meta["sha256"], meta)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(card_path, f"malformed model card ({e.__class__.__name__}: {e})") from None
    return card, onnx_path


class OnnxLandmarkModel:
    """A shipped landmark model: RGB uint8 crops in, crop-pixel landmarks (B, N, D) out (a ``CropPredictor``).

    ``flip=True`` also runs each crop mirrored and averages the two answers (test-time augmentation:
    twice the cost, usually a little more accurate). ``precision``: ``auto`` (int8 where the card has an
    int8 variant and the CPU runs int8 fast, else fp32), ``fp32`` or ``int8``; ``self.precision`` says which
    runs. ``decoder`` replaces the card's heatmap decoder
    (``argmax``, ``quarter``, ``soft_argmax``): the same network read out differently, for ablations.
    """

    def __init__(self, name_or_path: str | Path = DEFAULT_MODEL, threads: int | None = None, flip: bool = False,
                 decoder: str | None = None, precision: str = "auto") -> None:

        if precision not in PRECISIONS:
            raise FacemarkError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
        self.card, path = load_card(name_or_path)
        int8 = self.card.meta.get("int8")
        if precision == "int8" and not int8:
            raise FacemarkError(f"model {self.card.name!r} has no int8 variant (facemark quantize makes one)")
        self.precision = "int8" if int8 and (precision == "int8" or (precision == "auto" and cpu_has_int8_dot())) \
            else "fp32"
        expected = self.card.sha256
        if self.precision == "int8":
            path, expected = path.with_name(int8["file"]), int8["sha256"]
            if not path.is_file():
                raise DataError(path, "int8 model weights (.onnx) not found")
        digest = sha256_of(path)
        if digest != expected:
            raise DataError(path, f"sha256 mismatch (file {digest[:12]}..., card {expected[:12]}...): "
                                  "corrupt or replaced weights")
        self.session = model_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self._visibility_output = names.index("visibility") if "visibility" in names else None
        # one face (the common call) runs in a second session whose batch size is fixed to 1, made at its first
        # use: it spares the shape arithmetic of a free batch size (up to 16% of an fp32 HRNet's time,
        # docs/benchmarks.md); None where the file's batch size is fixed already
        batch = self.session.get_inputs()[0].shape[0]
        self._single_dim = batch if isinstance(batch, str) else None
        self._file, self._threads, self._single = path, threads, None
        self.flip = flip
        self.scheme: Scheme = scheme(self.card.scheme)
        codec = dict(self.card.codec)
        if decoder is not None:
            if decoder not in decoders_of(codec.get("name", "")):
                raise FacemarkError(f"model {self.card.name!r} uses the {self.card.codec['name']!r} codec, "
                                    f"which has no decoder {decoder!r}")
            codec["decoder"] = decoder
        try:
            self.codec = build_codec(codec, self.card.input_size, self.scheme.n_points, self.card.dim)
            self.calibration = Calibration.from_card(self.card.meta.get("uncertainty"))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(path.with_suffix(".json"), f"bad codec or uncertainty in model card: {e}") from None

    @property
    def input_size(self) -> int:
        return self.card.input_size

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) RGB uint8 crops -> (B, N, D) landmarks in crop pixels."""
        return self._analyse(crops, False)[0]

    def scored(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, S, S, 3) RGB uint8 crops -> ((B, N, D) landmarks in crop pixels, (B,) confidence that each crop
        holds a face: the codec's ``confidence``, e.g. the mean heatmap peak; None for a regression model)."""
        return self._analyse(crops, False)[:2]

    def analyse(self, crops: np.ndarray) -> Analysis:
        """``scored``'s points and confidence, with (B, N) each point's expected error in crop pixels where the
        card holds an uncertainty calibration (``core.uncertainty``; from the unmirrored pass with ``flip``) and
        (B, N) each point's probability of being in sight where the model has a visibility head."""
        return self._analyse(crops, True)

    def _analyse(self, crops: np.ndarray, uncertainty: bool) -> Analysis:
        """The read-outs of ``analyse``; the uncertainty only when asked (callers that want points skip it)."""
        s = self.input_size
        if getattr(crops, "shape", None) is None or crops.ndim != 4 or crops.shape[1:] != (s, s, 3):
            raise ArgumentError("crops", f"expected (B, {s}, {s}, 3) RGB crops, got shape {np.shape(crops)}")
        want = uncertainty and self.calibration is not None
        if len(crops) == 0:
            n = self.scheme.n_points
            return Analysis(np.zeros((0, n, self.card.dim)), np.zeros(0), np.zeros((0, n)) if want else None,
                            np.zeros((0, n)) if self.has_visibility else None)
        pts, conf, feats, vis = self._run(crops, want)
        if self.flip:
            mirrored, conf2, _, vis2 = self._run(np.ascontiguousarray(crops[:, :, ::-1]), False)
            pts = (pts + self.scheme.flip_points(mirrored, self.input_size)) / 2
            conf = None if conf is None else (conf + conf2) / 2
            vis = None if vis is None else (vis + vis2[:, list(self.scheme.flip)]) / 2
        unc = self.calibration.expected_error(feats) if want and feats is not None else None
        return Analysis(pts, conf, unc, vis)

    def _run(self, crops: np.ndarray, features: bool):
        """Points, confidence, point features (if asked) and visibility (if the model has it) of one pass."""
        out = self._session(len(crops)).run(None, {self.input_name: to_input(crops)})
        vis = out.pop(self._visibility_output).astype(np.float64) if self.has_visibility else None
        out = out[0] if len(out) == 1 else tuple(out)
        return (self.codec.decode(out), self.codec.confidence(out),
                self.codec.point_features(out) if features else None, vis)

    @property
    def has_visibility(self) -> bool:
        """Whether the model has a visibility head (an ONNX output named ``visibility``)."""
        return self._visibility_output is not None

    def features(self, crops: np.ndarray) -> np.ndarray | None:
        """(B, N, 2) the codec's per-point features (what an uncertainty calibration is fitted on), or None."""
        return self._run(crops, True)[2]

    def _session(self, batch: int):
        """The session for a batch of this size (the fixed-batch one for a single face, see ``__init__``)."""
        if batch != 1 or self._single_dim is None:
            return self.session
        if self._single is None:
            self._single = model_session(self._file, self._threads, {self._single_dim: 1})
        return self._single
