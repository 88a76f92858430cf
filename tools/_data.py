"""Where the tools read the shared annotated faces: ../shared/data beside the repository, or $FACEMARK_DATA."""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("FACEMARK_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
