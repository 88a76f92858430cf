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


@pytest.fixture(scope="session")
def tiny_root(data, tmp_path_factory) -> Path:
    """A data root of 16 annotated faces (the first of faces68/train/afw) in ``faces/``: tiny training runs."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "faces").mkdir()
    for p in sorted((data / "faces68/train/afw").glob("*.pts"))[:16]:
        shutil.copy(p, root / "faces" / p.name)
        shutil.copy(p.with_suffix(".jpg"), root / "faces" / p.with_suffix(".jpg").name)
    return root


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


# Property-based tests (tests/test_fuzz.py): a small seeded sample in the suite; tools/fuzz.py runs the
# "fuzz" profile (10,000 cases per target, random seeds).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=60, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("fuzz", max_examples=int(os.environ.get("FACEMARK_FUZZ_CASES", 10_000)), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("FACEMARK_HYPOTHESIS", "ci"))
