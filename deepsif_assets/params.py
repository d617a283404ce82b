"""The DeepSIF parameter sets besides the simulation constants (pure): how to simulate, how to extract clips,
how to build the synthetic source. Each field is defined once here; config classes and CLI flags derive from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepsif_assets.simulation import DEFAULT_PRECISION, ENGINE_PRECISIONS
from deepsif_assets.simulation.params import N_FS_REGIONS
from deepsif_assets.simulation.region import ENGINES, RAW_FORMATS
from neuro_core.params import ParamError, check_param_ranges, param, params_dict

SYNTHETIC_MODES = ("train", "test")
# Regions simulated together as lanes of one batch (× their iterations): 4 regions = 12 lanes, ≈ 0.3 GB of memory
# in the original configuration (measured 0.32 GB: the compact output is streamed to its files).
REGIONS_PER_BATCH = 4


@dataclass(frozen=True)
class SimulationOptions:
    """Which engine simulates, where the connectome comes from, and how raw data is written."""

    engine: str = param(
        "fast", "fast: our numba engine; tvb: stock tvb-library (the reference, hundreds of times slower)", choices=ENGINES
    )
    raw_format: str = param(
        "compact",
        "compact: one decimated _ds.mat per iteration (the original's own cache); original: the original's "
        "20 segment files per iteration",
        choices=RAW_FORMATS,
    )
    precision: str = param(
        DEFAULT_PRECISION,
        "fast engine arithmetic: fast (vectorised exp, within 1.5 ulp of the exact exp; float32 delay ring) or "
        "faithful (libm exp, bit for bit the single-simulation engine); the tvb engine ignores it",
        choices=ENGINE_PRECISIONS,
    )
    threads: int = param(1, "threads of one simulation batch (results do not depend on it)", ge=1, cli=False)
    connectivity_file: str = param("connectivity_998.zip", "connectome zip in the anatomy folder", cli=False)

    @property
    def effective_precision(self) -> str:
        """What the recorded configuration says about arithmetic: the tvb engine has only its own."""
        return "tvb-library" if self.engine == "tvb" else self.precision

    def __post_init__(self) -> None:
        check_param_ranges(self)


@dataclass(frozen=True)
class ExtractionParams:
    """Options of ``matlab/process_region_clips.m`` plus the raw clean-up switch."""

    filename: str = param("spikes", "clips go to <source>/nmm_<filename>/")
    leadfield_name: str = param(
        "leadfield_75_20k.mat", "lead field (fwd: electrodes × 994) in the anatomy folder", flag="--leadfield"
    )
    iterations: tuple[int, ...] = param(
        (0, 1, 2), "iterations to extract, in clip-numbering order", ge=0, cli=False
    )
    keep_raw: bool = param(False, "keep raw_nmm/a<r> after the clips are verified")
    compress_clips: bool = param(
        False,
        "save clips compressed (MAT -v7, as MATLAB's default save of the original: ≈ 10–15 % smaller, but ≈ 35× "
        "slower to write and ≈ 30× slower to read) instead of uncompressed (MAT -v6, the same values)",
    )
    lexicographic_segment_order: bool = param(
        False, "read raw segments 0, 1, 10, 11, …, 2 as the original (original raw format only)", cli=False
    )
    transient_samples: int = param(1000, "raw samples dropped (original raw format only)", ge=0, cli=False)
    downsample_factor: int = param(4, "decimation (original raw format only)", ge=1, cli=False)
    threshold_mv: float = param(8.0, "peaks below this are not spikes", unit="mV", cli=False)
    min_peak_separation: int = param(100, "samples a peak must follow the previous one by", ge=1, cli=False)
    edge_before: int = param(249, "edge rule: keep t only if t − edge_before > 0", ge=0, cli=False)
    edge_after: int = param(250, "edge rule: keep t only if t + edge_after < n", ge=0, cli=False)
    clip_length: int = param(500, "samples per clip", ge=1, cli=False)
    rule2_before: int = param(200, "rule 2 window starts this many samples before the clip", ge=0, cli=False)
    rule2_window: int = param(900, "rule 2 window length", ge=1, unit="samples", cli=False)
    snr_before: int = param(99, "SNR rows start this many samples before each peak", ge=0, cli=False)
    snr_after: int = param(100, "SNR rows end this many samples after each peak", ge=0, cli=False)
    target_snr_db: float = param(15.0, "target sensor SNR of the source spike", unit="dB", cli=False)
    thre_start: float = param(0.1, "initial near-zero threshold of the waveform rescaling", gt=0, cli=False)
    thre_step: float = param(0.05, "threshold increment of the waveform rescaling", gt=0, cli=False)
    faithful_trough_offset: bool = param(True, "keep the original min_ind off-by-one", cli=False)
    fix_block_start: bool = param(
        True, "a peak at t = 500·k stays inside its clip (the original lets it fall outside)", cli=False
    )

    def __post_init__(self) -> None:
        check_param_ranges(self)
        if not self.iterations or len(set(self.iterations)) != len(self.iterations):
            raise ParamError(f"ExtractionParams.iterations={self.iterations!r}: expected distinct iterations")

    def matlab_options(self, n_fs_regions: int = N_FS_REGIONS) -> dict[str, Any]:
        """The ``opts`` struct of ``process_region_clips`` (vectors as lists: both backends accept them)."""
        options = params_dict(self)
        for name in ("filename", "leadfield_name", "keep_raw"):
            options.pop(name)
        options["n_fs_regions"] = n_fs_regions
        options["skip_done_iterations"] = False  # the asset wipes partial state itself (see extraction.py)
        return options


@dataclass(frozen=True)
class SyntheticParams:
    """What ``generate_sythetic_source.m`` hard-coded as script flags, made explicit."""

    mode: str = param(
        "train",
        "train: 100 clips per region assumed, 48 variations, SNRs 10:2:20; test: 10, 3, [10 15]",
        choices=SYNTHETIC_MODES,
    )
    n_sources: int = param(2, "source patches per sample", ge=1)
    seed: int = param(0, "seed of the synthetic source's random stream (same inputs + seed → same file)", ge=0)
    filename: str = param("spikes", "clips are read from <source>/nmm_<filename>/", cli=False)
    leadfield: str = param("leadfield_75_20k.mat", "lead field in the anatomy folder", cli=False)
    faithful_window: bool = param(
        False,
        "use the original peak window max(peak-50,0):max(peak+50,500) (fails near clip edges) instead of "
        "max(peak-50,1):min(peak+50,500)",
        cli=False,
    )
    min_clips_per_region: int = param(
        1, "regions with fewer clips are not used as patch centres (they are listed)", ge=1, cli=False
    )
    regions: tuple[int, ...] | None = param(
        None, "centre regions to use; default: every region whose clips are materialized", ge=0, cli=False
    )
    write_clip_store: bool = param(
        True,
        "also write <mode>_sample_nmm.h5 (every clip of the used regions, ≈ 2 MB each) that nmm_idx points into",
    )
    fingerprint: str | None = param(
        None,
        "use only regions whose clips were made with this configuration fingerprint (needed when the clip "
        "folder holds several configurations)",
        cli=False,
    )

    def __post_init__(self) -> None:
        check_param_ranges(self)
