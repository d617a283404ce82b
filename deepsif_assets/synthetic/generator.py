"""Inputs of ``matlab/generate_synthetic_source.m``: settings per mode and the seeded random numbers.

Random stream (deliberate fix; the original is unseeded): every random number is drawn here with NumPy
(``SeedSequence(seed).spawn``, one independent PCG64 stream per purpose) and handed to the ``.m`` function in its
parameter file, so MATLAB and Octave produce the same file for the same seed. Patch growth gives each region its
own slice of the growth stream, so a region's candidate patches depend only on (seed, region) and not on which
other regions are used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

NAN_NUMBER = 15213
MAX_SIZE = 70
SENSOR_SNR_DB = (5, 10, 15, 20)
GENERATOR_FUNCTION = "generate_synthetic_source"


@dataclass(frozen=True)
class ModeSettings:
    """The original's ``train`` / test constants."""

    nper: int  # clips per region the original assumes
    n_iter: int  # variations per centre region
    scale_snr_db: tuple[float, ...]  # target SNRs of scale_ratio


MODES: dict[str, ModeSettings] = {
    "train": ModeSettings(nper=100, n_iter=48, scale_snr_db=(10, 12, 14, 16, 18, 20)),
    "test": ModeSettings(nper=10, n_iter=3, scale_snr_db=(10, 15)),
}


def output_name(mode: str) -> str:
    """``<train|test>_sample_source1.mat``."""
    return f"{mode}_sample_source1.mat"


def clip_store_name(mode: str) -> str:
    """What DeepSIF's loader opens next to the source file: ``<train|test>_sample_nmm.h5``."""
    return f"{mode}_sample_nmm.h5"


def _unique_neighbours(nbs: Sequence[np.ndarray], regions: np.ndarray) -> np.ndarray:
    if regions.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([nbs[r] for r in regions]))


def growth_draw_bounds(nbs: Sequence[np.ndarray]) -> np.ndarray:
    """Upper bound of the growth random numbers each region consumes (0-based ``nbs``).

    Two-layer candidates draw one number per second-layer region; three-layer candidates one per second-layer
    region plus one per third-layer region, and the third layer lies in the neighbours of the second layer.
    """
    bounds = np.zeros(len(nbs), dtype=np.int64)
    for r in range(len(nbs)):
        nb1 = np.setdiff1d(np.unique(nbs[r]), [r])
        inner = np.concatenate([[r], nb1])
        nb2 = np.setdiff1d(_unique_neighbours(nbs, nb1), inner)
        around_nb2 = np.setdiff1d(_unique_neighbours(nbs, nb2), inner)
        n_dir = math.ceil(nb1.size / 2)
        bounds[r] = 5 * n_dir * (2 * nb2.size + around_nb2.size)
    return bounds


@dataclass(frozen=True)
class RandomInputs:
    """All random numbers of one dataset."""

    u_growth: np.ndarray
    growth_offset: np.ndarray  # (n_all,) start of each region's slice in u_growth
    centre_perm: np.ndarray  # (n_iter*(n_sources-1), R) permutations of 1..R
    u_candidate: np.ndarray  # (n_iter*R, n_sources)
    u_clip: np.ndarray  # (4*n_iter*R, n_sources)
    point_05: int


def draw_random_inputs(
    seed: int, nbs: Sequence[np.ndarray], n_regions: int, n_iter: int, n_sources: int
) -> RandomInputs:
    """Draw every random number of one dataset from ``seed`` (independent streams per purpose)."""
    growth_ss, perm_ss, cand_ss, clip_ss, point_ss = np.random.SeedSequence(seed).spawn(5)
    bounds = growth_draw_bounds(nbs)
    offsets = np.concatenate([[0], np.cumsum(bounds)[:-1]])
    perm_rng = np.random.default_rng(perm_ss)
    perms = (
        np.stack([perm_rng.permutation(n_regions) + 1 for _ in range(n_iter * (n_sources - 1))])
        if (n_sources > 1)
        else np.zeros((0, n_regions))
    )
    n_base = n_iter * n_regions
    return RandomInputs(
        u_growth=np.random.default_rng(growth_ss).random(int(bounds.sum())),
        growth_offset=offsets,
        centre_perm=perms.astype(np.float64),
        u_candidate=np.random.default_rng(cand_ss).random((n_base, n_sources)),
        u_clip=np.random.default_rng(clip_ss).random((len(SENSOR_SNR_DB) * n_base, n_sources)),
        point_05=int(np.random.default_rng(point_ss).integers(40, 61)),
    )


@dataclass(frozen=True)
class GeneratorInputs:
    """Everything the ``.m`` generator needs besides the random numbers."""

    inflated_file: Path
    region_mapping_file: Path
    leadfield_file: Path
    dis_matrix_file: Path
    clips_root: Path
    output_file: Path
    clip_counts: Mapping[int, int]  # centre region (0-based) -> usable clips (>= 1)
    clip_offsets: Mapping[int, int]  # centre region -> row of its first clip in the clip store
    mode: str
    n_sources: int
    faithful_window: bool
    window_cached: frozenset[int] = frozenset()  # centre regions whose clip_windows/a{r}.mat covers their clips


def write_generator_params(params_file: Path, inputs: GeneratorInputs, random: RandomInputs) -> None:
    """Write the parameter MAT file read by ``generate_synthetic_source.m``."""
    settings = MODES[inputs.mode]
    regions = sorted(inputs.clip_counts)
    scipy.io.savemat(
        params_file,
        {
            "inflated_file": str(inputs.inflated_file),
            "region_mapping_file": str(inputs.region_mapping_file),
            "leadfield_file": str(inputs.leadfield_file),
            "dis_matrix_file": str(inputs.dis_matrix_file),
            "clips_root": str(inputs.clips_root),
            "output_file": str(inputs.output_file),
            "regions": np.array(regions, dtype=np.float64),
            "clip_counts": np.array([inputs.clip_counts[r] for r in regions], dtype=np.float64),
            "clip_offsets": np.array([inputs.clip_offsets[r] for r in regions], dtype=np.float64),
            "window_cached": np.array([r in inputs.window_cached for r in regions], dtype=np.float64),
            "nper": float(settings.nper),
            "n_iter": float(settings.n_iter),
            "n_sources": float(inputs.n_sources),
            "train": float(inputs.mode == "train"),
            "scale_snr": np.array(settings.scale_snr_db, dtype=np.float64),
            "sensor_snr": np.array(SENSOR_SNR_DB, dtype=np.float64),
            "faithful_window": float(inputs.faithful_window),
            "point_05": float(random.point_05),
            "u_growth": random.u_growth,
            "growth_offset": random.growth_offset.astype(np.float64),
            "centre_perm": random.centre_perm,
            "u_candidate": random.u_candidate,
            "u_clip": random.u_clip,
        },
        do_compression=False,
    )


def run_generator(call: Callable[..., object], params_file: Path) -> None:
    """Run the ``.m`` generator through an engine ``call(function, *args)`` (e.g. ``OctaveResource.call``)."""
    call(GENERATOR_FUNCTION, str(params_file))
