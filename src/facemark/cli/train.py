"""``facemark train`` and ``facemark export`` (these need the ``train`` extra: torch)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .base import command


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="YAML training config (see configs/)")
    p.add_argument("--out", type=Path, help="run directory (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--data-root", help="override the config's data_root (default ../shared/data)")
    p.add_argument("--epochs", type=int, help="override the config's epoch count")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]; the run's log records it")
    p.add_argument("--workers", type=int, default=1,
                   help="processes preparing augmented batches (threads when a teacher model runs; more keep a GPU "
                        "busy; results do not change)")


@command("train", _train_args)
def _train(a: argparse.Namespace) -> int:
    """Train a model from a config; resumable with --resume."""
    from ..training.config import config_kind, load_config
    from ..training.detect_train import load_detector_config

    if config_kind(a.config) == "mtcnn":
        from ..training.mtcnn_train import load_mtcnn_config, train_mtcnn

        mt = load_mtcnn_config(a.config)
        if a.data_root:
            mt.data_root = a.data_root
        train_mtcnn(mt, a.out or Path("runs") / mt.name, resume=a.resume)
        return 0
    if config_kind(a.config) == "detector":
        from ..training.detect_train import train_detector

        det = load_detector_config(a.config)
        if a.data_root:
            det.data_root = a.data_root
        if a.epochs:
            det.epochs = a.epochs
        train_detector(det, a.out or Path("runs") / det.name, resume=a.resume)
        return 0
    from ..training.trainer import train

    cfg = load_config(a.config)
    if a.data_root:
        cfg.data_root = a.data_root
    if a.epochs:
        cfg.epochs = a.epochs
    train(cfg, a.out or Path("runs") / cfg.name, resume=a.resume, device=a.device, workers=a.workers)
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a run's best.pt (or last.pt)")
    p.add_argument("--name", required=True, help="model name, e.g. pfld68")
    p.add_argument("--out", type=Path, help="folder for NAME.onnx and NAME.json (default: the run's export/)")
    p.add_argument("--force", action="store_true", help="replace a model already there (a shipped one included)")
    p.add_argument("--command-line", default="", help="the training command, recorded in the model card")


@command("export", _export_args)
def _export(a: argparse.Namespace) -> int:
    """Export a trained checkpoint to ONNX with its model card (sha256, config, metrics)."""
    from ..training.export import export

    out = a.out or a.checkpoint.parent / "export"
    path = export(a.checkpoint, a.name, out, {"training_command": a.command_line} if a.command_line else None,
                  force=a.force)
    print(f"wrote {path} and {path.with_suffix('.json')}" if path.suffix == ".onnx"
          else f"wrote {path} and the .onnx files it lists")
    return 0


def _quantize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a shipped model name or an exported .onnx with its card")
    p.add_argument("--calibration", type=Path, default=Path("../shared/data/faces68/train"),
                   help="300W-layout folder of training faces to calibrate on (default ../shared/data/faces68/train)")
    p.add_argument("--faces", type=int, default=256,
                   help="how many of them, spread evenly (default 256); as many others are held aside")
    p.add_argument("--method", choices=("best", "minmax", "percentile"), default="best",
                   help="activation ranges: the largest value seen, its 99.99th percentile, or best (default): "
                        "both, keeping the one more accurate on the held-aside faces")


@command("quantize", _quantize_args)
def _quantize(a: argparse.Namespace) -> int:
    """Add a static int8 variant to a model (NAME.int8.onnx beside it, recorded in its card)."""
    from ..core.errors import FacemarkError
    from ..inference.runtime import cpu_has_int8_dot, load_card
    from ..io.datasets import read_pts_folder
    from ..training.quantize import quantize

    if a.faces < 1:
        raise FacemarkError(f"--faces {a.faces}: at least 1")
    samples = read_pts_folder(a.calibration)
    step = max(1, len(samples) // a.faces)
    picked = samples[::step][:a.faces]
    others = [s for i, s in enumerate(samples) if i % step or i // step >= a.faces]
    held = others[::max(1, len(others) // a.faces)][:a.faces]
    if a.method == "best" and not held:
        raise FacemarkError(f"{a.calibration}: {len(samples)} faces, none left to hold aside beside the "
                            f"{len(picked)} calibration ones (lower --faces, or pass --method)")
    path = quantize(a.model, picked, f"{len(picked)} faces of {a.calibration.name} (every {step}th of "
                                     f"{len(samples)}), cropped by their landmarks", a.method, held)
    int8 = load_card(a.model)[0].meta["int8"]
    scores = ", ".join(f"{k[4:]} {v:.2%}" for k, v in int8.get("held_aside", {}).items() if k.startswith("nme_"))
    print(f"wrote {path} ({int8['scheme']})" + (f"; NME on {len(held)} held-aside faces: {scores}" if scores else ""))
    if not cpu_has_int8_dot():
        print("facemark: note: this CPU has no VNNI or AMX: its int8 sums saturate, so the int8 errors above (and "
              "--method best's choice) are worse than where int8 runs (docs/benchmarks.md); measure int8 on a CPU "
              "with VNNI or AMX",
              file=sys.stderr)
    return 0
