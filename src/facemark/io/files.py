"""Files that appear whole or not at all."""
from __future__ import annotations

import os

from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, then rename, so no partial file is ever left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def default_data_root() -> str:
    """Where data paths start unless a config or command says: ``FACEMARK_DATA`` where set (as the tests and
    tools read it), else ../shared/data (from the working directory)."""
    return os.environ.get("FACEMARK_DATA", "../shared/data")
