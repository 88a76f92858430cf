"""``facemark train`` and ``facemark export`` (these need the ``train`` extra: torch)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..io.files import default_data_root
from .base import command


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="YAML training config (see configs/)")
    p.add_argument("--out", type=Path, help="run directory (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--data-root", help="override the config's data_root (default FACEMARK_DATA, else ../shared/data)")
    p.add_argument("--epochs", type=int, help="override the config's epoch count")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]; the run's log records it")
    p.add_argument("--workers", type=int, default=1,
                   help="landmark models: processes preparing augmented batches (threads when a teacher model runs; "
                        "more keep a GPU busy; results do not change)")
    p.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes on this machine, started by torchrun (default 1: none); each "
                        "trains on its share of every batch; torchrun's own arguments run several machines "
                        "(docs/training.md)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps, leaving a checkpoint "
                                                 "(smoke runs)")


@command("train", _train_args)
def _train(a: argparse.Namespace) -> int:
    """Train a model from a config; resumable with --resume."""
    from ..core.errors import FacemarkError
    from ..training.config import config_kind, load_config
    from ..training.detect_train import load_detector_config

    if a.nproc < 1 or (a.max_steps is not None and a.max_steps < 1):
        raise FacemarkError(f"--nproc {a.nproc} / --max-steps {a.max_steps}: at least 1")
    kind = config_kind(a.config)
    if kind in ("asm", "aam"):    # classical: built in one pass, no optimiser (no --resume, --device or processes)
        from ..training.classical import build_classical, load_classical_config

        cl = load_classical_config(a.config)
        if a.data_root:
            cl.data_root = a.data_root
        out = a.out or Path("runs") / cl.name
        build_classical(cl, out, f"facemark train {a.config} --out {out}")
        return 0
    if kind == "mtcnn":
        from ..training.mtcnn_train import load_mtcnn_config

        cfg = load_mtcnn_config(a.config)
    elif kind == "detector":
        cfg = load_detector_config(a.config)
    else:
        cfg = load_config(a.config)
    if a.data_root:
        cfg.data_root = a.data_root
    if a.epochs and kind != "mtcnn":
        cfg.epochs = a.epochs
    out = a.out or Path("runs") / cfg.name
    if a.nproc > 1:   # the same command in N processes under torchrun, which sets their ranks
        return _torchrun(a.argv, a.nproc)
    if kind == "mtcnn":
        from ..training.mtcnn_train import train_mtcnn

        train_mtcnn(cfg, out, resume=a.resume, device=a.device, max_steps=a.max_steps)
    elif kind == "detector":
        from ..training.detect_train import train_detector

        train_detector(cfg, out, resume=a.resume, device=a.device, max_steps=a.max_steps)
    else:
        from ..training.trainer import train

        train(cfg, out, resume=a.resume, device=a.device, workers=a.workers, max_steps=a.max_steps)
    return 0


def _torchrun(argv: list[str], nproc: int) -> int:
    """Run this ``facemark train`` command (``argv``) again in ``nproc`` processes on this machine (torchrun
    --standalone), without its ``--nproc``."""
    import subprocess

    args, k = [], 0
    while k < len(argv):   # the command without --nproc
        if argv[k] == "--nproc":
            k += 2
            continue
        if not argv[k].startswith("--nproc="):
            args.append(argv[k])
        k += 1
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "facemark", *args]
    return subprocess.run(cmd).returncode


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
    p.add_argument("--calibration", type=Path, default=Path(default_data_root()) / "faces68" / "train",
                   help="300W-layout folder of training faces to calibrate on (default DATA/faces68/train; DATA: "
                        "FACEMARK_DATA or ../shared/data)")
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
        print("facemark: note: this CPU has no VNNI or AMX: int8 runs slower than fp32 here, so precision='auto' "
              "loads the fp32 file (the errors above hold wherever int8 runs)", file=sys.stderr)
    return 0
