"""``facemark export``: a trained checkpoint -> ``NAME.onnx`` + ``NAME.json`` card (what ships in the package)."""
from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError
from ..inference.runtime import sha256_of
from .config import config_from_dict
from .engine import load_checkpoint
from .models import build_model


class _Inference(torch.nn.Module):
    """The inference graph only: the model's forward (auxiliary branches are left out)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def export(checkpoint: Path, name: str, out_dir: Path, extra: dict | None = None, force: bool = False) -> Path:
    """Write ``out_dir/NAME.onnx`` and its card; returns the ONNX path. Nothing is written on failure, and an
    existing model of that name (a shipped one too) is replaced only with ``force``."""
    if not checkpoint.is_file():
        raise DataError(checkpoint, "checkpoint not found")
    taken = [p for p in (out_dir / f"{name}.onnx", out_dir / f"{name}.json") if p.exists()]
    if taken and not force:
        raise DataError(taken[0], "already exists; pass --force to replace it (or choose another --name / --out)")
    st = load_checkpoint(checkpoint)
    if st["kind"] == "mtcnn":
        from .mtcnn_train import export_mtcnn

        return export_mtcnn(st, name, out_dir, extra, checkpoint.parent / "log.jsonl")
    if st["kind"] == "detector":
        from .detect_train import export_detector

        return export_detector(st, name, out_dir, extra, checkpoint.parent / "log.jsonl")
    cfg = config_from_dict(st["config"], str(checkpoint))
    spec = cfg.spec
    model = build_model(spec, cfg.model)
    model.load_state_dict(st["modules"]["model"])
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    tmp = out_dir / f".{name}.onnx.tmp"
    dummy = torch.zeros(1, 3, cfg.input_size, cfg.input_size)
    with torch.no_grad():
        sample = model(dummy)
    outputs = [f"output_{k}" for k in range(len(sample))] if isinstance(sample, tuple) else ["output"]
    if cfg.model.get("visibility"):   # the visibility head's output, which the runtime finds by its name
        outputs = (["output"] if len(outputs) == 2 else outputs[:-1]) + ["visibility"]
    # the wrapper must be in eval mode too: the exporter restores its mode (and so its children's) afterwards
    torch.onnx.export(_Inference(model).eval(), (dummy,), str(tmp), input_names=["image"], output_names=outputs,
                      dynamic_axes={name: {0: "batch"} for name in ["image", *outputs]}, opset_version=17,
                      dynamo=False)
    _check_same_outputs(model, tmp, cfg.input_size)
    params, macs = count_inference_cost(model, cfg.input_size)
    log = checkpoint.parent / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    card = {
        "name": name,
        "scheme": cfg.scheme,
        "n_points": spec.n_points,
        "dim": cfg.dim,
        "input_size": cfg.input_size,
        "codec": cfg.codec,
        "sha256": sha256_of(tmp),
        "parameters": params,
        "macs": macs,
        "checkpoint_epoch": st.get("epoch"),
        "validation": st.get("metrics") or next((r["val"] for r in records if r["epoch"] == st.get("epoch")), None),
        "epochs_run": len(records),
        "train_minutes": round(sum(r["train_s"] + r["val_s"] for r in records) / 60, 1) if records else None,
        "trained_on": sorted({r.get("device", "cpu") for r in records}),
        "config": st["config"],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "licence": "Trained on 300W (iBUG re-annotations of HELEN and AFW) and YouTube-Faces frames: "
                   "research use only, as 300W's terms require.",
        **(extra or {}),
    }
    tmp.replace(onnx_path)
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return onnx_path


def count_inference_cost(model: torch.nn.Module, size: int) -> tuple[int, int]:
    """(parameters, multiply-accumulates) of one forward pass at ``size`` x ``size``, counting the conv and
    linear layers the inference graph runs (training-only branches are not run, so not counted)."""
    macs = 0
    used: set[int] = set()

    def hook(mod: torch.nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        used.update(id(p) for p in mod.parameters(recurse=False))
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            macs += out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            macs += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    params = sum(p.numel() for p in model.parameters() if id(p) in used)
    return int(params), int(macs)


def _check_same_outputs(model: torch.nn.Module, onnx_path: Path, size: int) -> None:
    """Fail the export if ONNX Runtime disagrees with torch on random inputs."""
    import onnxruntime as ort

    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, size, size)).astype(np.float32)
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    refs = [r.numpy() for r in ref] if isinstance(ref, tuple) else [ref.numpy()]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for r, got in zip(refs, sess.run(None, {"image": x})):
        if not np.allclose(r, got, atol=1e-4):
            onnx_path.unlink()
            raise DataError(onnx_path, f"ONNX output differs from torch (max {np.abs(r - got).max():.2e})")
