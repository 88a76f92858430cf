"""The ``facemark`` command: one subcommand per job; errors are one line naming the file at fault."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from .errors import FacemarkError

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: ``add_args`` declares its options, the decorated function runs it."""

    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (add_args, fn)
        return fn

    return deco


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="YAML training config (see configs/)")
    p.add_argument("--out", type=Path, help="run directory (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--data-root", help="override the config's data_root (default ../shared/data)")
    p.add_argument("--epochs", type=int, help="override the config's epoch count")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]; the run's log records it")
    p.add_argument("--workers", type=int, default=1,
                   help="threads preparing augmented batches (more keep a GPU busy; results do not change)")


@command("train", _train_args)
def _train(a: argparse.Namespace) -> int:
    """Train a model from a config; resumable with --resume."""
    from .config import load_config
    from .training.trainer import train

    cfg = load_config(a.config)
    if a.data_root:
        cfg.data_root = a.data_root
    if a.epochs:
        cfg.epochs = a.epochs
    train(cfg, a.out or Path("runs") / cfg.name, resume=a.resume, device=a.device, workers=a.workers)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import commands  # noqa: F401  (registers the inference and evaluation subcommands)

    parser = argparse.ArgumentParser(prog="facemark", description="Facial landmark detection and face alignment.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0], description=fn.__doc__)
        add_args(p)
        p.set_defaults(run=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FacemarkError as e:
        print(f"facemark: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
