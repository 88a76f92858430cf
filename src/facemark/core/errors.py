"""Errors that name the file (and line) at fault, so users never read a traceback from deep inside."""
from __future__ import annotations

from pathlib import Path


class FacemarkError(Exception):
    """Base class of every error facemark raises on purpose; the CLI prints it as one line."""


class DataError(FacemarkError):
    """Bad input data: a corrupt image, a malformed annotation, a wrong point count, missing weights."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ArgumentError(FacemarkError, ValueError):
    """A public function was given an argument it cannot use; the message names the argument."""

    def __init__(self, argument: str, problem: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {problem}")


def need(module: str, extra: str, what: str):
    """Import an optional dependency, or fail with the one line that says how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise FacemarkError(f"{what} needs {module.split('.')[0]}: pip install 'facemark[{extra}]'") from None
