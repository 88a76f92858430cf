"""The command registry: each module of the CLI package registers its subcommands here."""
from __future__ import annotations

import argparse
from typing import Callable

AddArgs = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[AddArgs, Run]] = {}


def command(name: str, add_args: AddArgs) -> Callable[[Run], Run]:
    """Register a subcommand: ``add_args`` declares its options, the decorated function runs it."""

    def deco(fn: Run) -> Run:
        COMMANDS[name] = (add_args, fn)
        return fn

    return deco
