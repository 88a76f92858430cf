"""The experiments read the shared data where the other tools do (``tools/_data.py``, loaded by its path: this
module has its name)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("facemark_tools_data", Path(__file__).resolve().parents[1] / "_data.py")
_tools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tools)
DATA, aflw2000_half = _tools.DATA, _tools.aflw2000_half
