"""Fixtures shared by the region and synthetic-source tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


@pytest.fixture
def fake_matlab(tmp_path, monkeypatch) -> Path:
    """A ``matlab`` on PATH that runs its ``-batch`` code in octave-cli (``-singleCompThread``: one BLAS thread):
    MATLAB cannot run here, but our real ``matlab -batch`` command construction and the unchanged ``.m`` files
    can."""
    bin_dir = tmp_path / "fake-matlab-bin"
    bin_dir.mkdir()
    fake = bin_dir / "matlab"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "-singleCompThread" ] && { export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1; shift; }\n'
        '[ "$1" = "-batch" ] || { echo "expected -batch" >&2; exit 2; }\n'
        'exec octave-cli --no-gui --eval "pkg load signal; $2"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return fake


@pytest.fixture(scope="session")
def octave():
    """One real Octave session (oct2py) shared by the region and synthetic-source tests."""
    from resources.octave import OctaveResource

    resource = OctaveResource()
    yield resource
    resource.close()
