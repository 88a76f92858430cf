"""The command registry: each module of the CLI package registers its subcommands here."""
from __future__ import annotations

import argparse
from typing import Callable

# exit statuses of every command (README: "Exit statuses")
EXIT_OK = 0            # done, and every input had a face
EXIT_NO_FACE = 1       # done, but some input had no face
EXIT_ERROR = 2         # bad arguments, or an error that stopped the command (one line on stderr)
EXIT_UNREADABLE = 3    # done, but some input could not be read (named on stderr); the others were processed

AddArgs = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[AddArgs, Run]] = {}


def command(name: str, add_args: AddArgs) -> Callable[[Run], Run]:
    """Register a subcommand: ``add_args`` declares its options, the decorated function runs it."""

    def deco(fn: Run) -> Run:
        COMMANDS[name] = (add_args, fn)
        return fn

    return deco
