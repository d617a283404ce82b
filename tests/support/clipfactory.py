"""Fabricated spike clips in the ``nmm_<filename>/a{r}/nmm_{k}.mat`` layout (for tests and the benchmark).

A "universal" clip carries a spike-like waveform (12·exp(-((t-t0)/10)²) - 4·exp(-((t-t0-50)/20)²), samples at
500 Hz) in every column on N(0, 0.5) background, each column with its own peak time, so one file can serve as a
clip of any region; region folders hold hard links to a small pool of such files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import scipy.io

N_SAMPLES = 500
N_REGIONS = 994

requires_octave = pytest.mark.skipif(
    shutil.which("octave-cli") is None, reason="GNU Octave (octave-cli) not installed"
)


def full_counts() -> dict[int, int]:
    """Clips per region for the all-region run: 0-4 have 12 (more than test-mode nper = 10), every tenth 3, others 1."""
    return {r: (12 if r < 5 else 3 if r % 10 == 0 else 1) for r in range(N_REGIONS)}


def spike_waveform(t0: np.ndarray) -> np.ndarray:
    """(500, len(t0)) spike waveforms peaking near samples t0 (0-based)."""
    t = np.arange(N_SAMPLES)[:, None]
    return 12 * np.exp(-(((t - t0[None, :]) / 10.0) ** 2)) - 4 * np.exp(
        -(((t - t0[None, :] - 50) / 20.0) ** 2)
    )


def write_universal_pool(folder: Path, n_files: int, n_regions: int = 994, seed: int = 7) -> list[Path]:
    """``n_files`` distinct universal clips (MAT v5 compressed, like Octave's -v7) in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        data = rng.normal(0.0, 0.5, (N_SAMPLES, n_regions)) + spike_waveform(rng.integers(60, 440, n_regions))
        path = folder / f"pool_{i}.mat"
        scipy.io.savemat(path, {"data": data.astype(np.float32)}, do_compression=True)
        paths.append(path)
    return paths


def link_clips(clips_root: Path, counts: Mapping[int, int], pool: list[Path], offset: int = 0) -> None:
    """Give region r ``counts[r]`` clips ``nmm_1 … nmm_n``, hard-linked from the pool (rotating)."""
    for r, n in counts.items():
        folder = clips_root / f"a{r}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, n + 1):
            target = folder / f"nmm_{k}.mat"
            if not target.exists():
                os.link(pool[(r + k + offset) % len(pool)], target)


def write_clip(path: Path, region: int, peak: int, n_regions: int = 994, seed: int = 0) -> None:
    """One ordinary clip: a spike in column ``region`` peaking at sample ``peak`` (0-based), noise elsewhere."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 0.5, (N_SAMPLES, n_regions))
    data[:, region] += spike_waveform(np.array([peak]))[:, 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    # uncompressed, as extraction writes clips by default (the universal pool above is compressed, like -v7)
    scipy.io.savemat(path, {"data": data.astype(np.float32)}, do_compression=False)


def synthetic_request(anatomy_dir, source_dir, candidate_regions, **params):
    """A ``SyntheticRequest`` with ``SyntheticParams(**params)``."""
    from deepsif_assets.params import SyntheticParams
    from deepsif_assets.synthetic.pipeline import SyntheticRequest

    return SyntheticRequest(anatomy_dir, source_dir, tuple(candidate_regions), SyntheticParams(**params))
