"""The ``facemark`` command: one subcommand per job, one module per command group (``infer``: detect, align,
demo; ``evaluate``; ``detection``: evaluate-detect; ``benchmark``; ``train``: train, export, quantize); errors are one line naming the file at
fault."""
from __future__ import annotations

import argparse
import sys

from ..core.errors import FacemarkError
from . import benchmark, detection, evaluate, infer, models, serve, train  # noqa: F401  (register their subcommands)
from .base import COMMANDS, EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="facemark", description="Facial landmark detection and face alignment.")
    parser.add_argument("--version", action="version", version=f"facemark {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0], description=fn.__doc__)
        add_args(p)
        p.set_defaults(run=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # the command as given (train --nproc runs it again)
    try:
        return args.run(args)
    except FacemarkError as e:
        print(f"facemark: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # the reader went away (`facemark ... | head`): stop quietly, as Unix tools do
        sys.stderr.close()
        return 141
