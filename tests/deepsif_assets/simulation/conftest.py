"""Shared fixtures: the real 998-node connectivity shipped with the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuro_core.project import PROJECT_ROOT


@pytest.fixture(scope="session")
def connectivity_998() -> Path:
    path = Path(PROJECT_ROOT) / "data" / "deepsif-anatomy" / "connectivity_998.zip"
    assert path.is_file(), f"real anatomy missing: {path}"
    return path
