"""Shared test fixtures: the real data in ../shared/data and the hand-made format fixtures in tests/fixtures."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
DATA = Path(os.environ.get("FACEMARK_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def data() -> Path:
    """The shared real data (faces68, faces5, samples)."""
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA} (set FACEMARK_DATA)")
    return DATA


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """A copy of tests/fixtures with the small images and .pts files its lists refer to."""
    root = tmp_path / "fx"
    shutil.copytree(FIXTURES, root)
    (root / "img").mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(root / "img" / f"{name}.png"), np.full((32, 48, 3), 128, np.uint8))
        shutil.copy(root / "pts_header.pts", root / "img" / f"{name}.pts")
    return root
