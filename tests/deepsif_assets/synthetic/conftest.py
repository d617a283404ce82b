"""Shared fixtures: the real anatomy, fabricated clips, one full test-mode run (Octave: ../conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from deepsif_assets.synthetic.pipeline import build_synthetic_source
from neuro_core.project import PROJECT_ROOT
from tests.support import clipfactory
from tests.support.clipfactory import synthetic_request

ANATOMY_DIR = PROJECT_ROOT / "data" / "deepsif-anatomy"
N_REGIONS = clipfactory.N_REGIONS


@pytest.fixture(scope="session")
def anatomy_dir() -> Path:
    return ANATOMY_DIR


@pytest.fixture(scope="session")
def clip_pool(tmp_path_factory) -> list[Path]:
    return clipfactory.write_universal_pool(tmp_path_factory.mktemp("clip_pool"), 12)


@pytest.fixture(scope="session")
def make_source(tmp_path_factory, clip_pool):
    """A fresh source folder with ``nmm_spikes/a{r}/nmm_{k}.mat`` hard-linked from the pool."""

    def make(counts: dict[int, int], name: str = "source") -> Path:
        source = tmp_path_factory.mktemp(name)
        clipfactory.link_clips(source / "nmm_spikes", counts, clip_pool)
        return source

    return make


@pytest.fixture(scope="session")
def full_run(make_source, octave, anatomy_dir):
    """Test mode, two sources, seed 0, every region a centre (clip store off: it would be 4 GB)."""
    source = make_source(clipfactory.full_counts(), "full")
    result = build_synthetic_source(
        synthetic_request(
            anatomy_dir, source, tuple(range(N_REGIONS)), mode="test", seed=0, write_clip_store=False
        ),
        octave.call,
    )
    return result, scipy.io.loadmat(result.output_file), source


@pytest.fixture(scope="session")
def neighbours(anatomy_dir) -> list[set[int]]:
    """Undirected 0-based neighbour sets straight from the region-mapping file."""
    cells = scipy.io.loadmat(anatomy_dir / "fs_cortex_20k_region_mapping.mat")["nbs"].ravel()
    sets = [set((np.asarray(c).ravel().astype(int) - 1).tolist()) for c in cells]
    for r, nb in enumerate(list(sets)):
        for j in nb:
            sets[j].add(r)
    return sets
