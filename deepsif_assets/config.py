"""Run configuration of the per-region assets ``raw_nmm`` (simulation) and ``nmm_spikes`` (clip extraction).

Defaults are the original configuration (dt 0.5 ms, 20 × 10 s per iteration, iterations 0–2); the BrainForge
variant is ``dt=1.0, n_segments=10, segment_ms=5000`` (spec §4.9). The MATLAB sample-count constants stay separate
named fields so that a dt = 1 run can keep them as-is (faithful) or be corrected to the original durations.
"""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field


class RawNmmConfig(dg.Config):
    """Every constant of ``generate_tvb_data.py`` (spec §4.3–§4.8)."""

    connectivity_file: str = Field(
        default="connectivity_998.zip", description="Connectome zip in the anatomy folder"
    )
    dt: float = Field(default=0.5, gt=0, description="HeunStochastic step (ms)")
    segment_ms: float = Field(
        default=10_000.0, gt=0, description="Simulated time per segment / raw file (ms)"
    )
    n_segments: int = Field(default=20, ge=1, description="Segments per iteration")
    iterations: list[int] = Field(
        default=[0, 1, 2], description="Noise settings m to simulate (index into mu)"
    )
    mu: list[float] = Field(default=[0.087, 0.08, 0.083], description="JansenRit mu per iteration m")
    noise_std: list[float] = Field(
        default=[1.0, 1.7, 1.5], description="Noise std multiplier per iteration m"
    )
    a_base: float = Field(default=3.25, description="JansenRit A everywhere but the excitable node")
    a_excitable: float = Field(default=3.5, description="JansenRit A at the excitable node")
    v0: float = Field(default=6.0, description="JansenRit v0")
    coupling_a: float = Field(default=1.0, description="SigmoidalJansenRit coupling a")
    conduction_speed: float = Field(default=3.0, gt=0, description="Conduction speed (mm/ms)")
    seed_policy: Literal["fixed", "per_region_iteration"] = Field(
        default="fixed",
        description="fixed: RandomState(seed) for every run, as TVB; or one seed per region/iteration",
    )
    seed: int = Field(default=42, ge=0, description="Noise seed")
    faithful_remap: bool = Field(
        default=False,
        description="True: excite TVB node r as the original; False: the fs→TVB mapped node (§4.10)",
    )
    transient_samples: int = Field(default=1000, ge=0, description="Raw samples dropped before decimation")
    downsample_factor: int = Field(default=4, ge=1, description="Decimation factor (2 kHz → 500 Hz)")
    engine: Literal["fast", "tvb"] = Field(
        default="fast", description="fast: numba engine; tvb: stock tvb-library"
    )
    raw_format: Literal["compact", "original"] = Field(
        default="compact",
        description="compact: one decimated remapped _ds.mat per iteration; original: 80 MB segment files",
    )

    def simulation_params(self) -> Any:
        """The pure :class:`~deepsif_assets.simulation.SimulationParams` for this config."""
        from deepsif_assets.simulation.params import SimulationParams

        return SimulationParams(
            dt=self.dt,
            segment_ms=self.segment_ms,
            n_segments=self.n_segments,
            iterations=tuple(self.iterations),
            mu=tuple(self.mu),
            noise_std=tuple(self.noise_std),
            a_base=self.a_base,
            a_excitable=self.a_excitable,
            v0=self.v0,
            coupling_a=self.coupling_a,
            conduction_speed=self.conduction_speed,
            seed_policy=self.seed_policy,
            seed=self.seed,
            faithful_remap=self.faithful_remap,
            transient_samples=self.transient_samples,
            downsample_factor=self.downsample_factor,
        )


class NmmSpikesConfig(dg.Config):
    """Options of ``matlab/process_region_clips.m`` (spec §5) plus the cleanup switch."""

    filename: str = Field(default="spikes", description="Clips go to <source_dir>/nmm_<filename>/")
    leadfield_name: str = Field(
        default="leadfield_75_20k.mat", description="Lead field (fwd 75×994) in anatomy"
    )
    iterations: list[int] = Field(
        default=[0, 1, 2], description="Iterations to extract, in clip-numbering order"
    )
    keep_raw: bool = Field(default=False, description="Keep raw_nmm/a{r} after successful extraction")
    lexicographic_segment_order: bool = Field(
        default=False, description="Read raw segments 0,1,10,11,…,2 as the original (faithful bug)"
    )
    transient_samples: int = Field(
        default=1000, ge=0, description="Raw samples dropped (original-format raw only)"
    )
    downsample_factor: int = Field(default=4, ge=1, description="Decimation (original-format raw only)")
    threshold_mv: float = Field(default=8.0, description="Peaks below this (mV) are not spikes")
    min_peak_separation: int = Field(
        default=100, description="Samples a peak must follow the previous one by"
    )
    edge_before: int = Field(default=249, description="Edge rule: keep t only if t − edge_before > 0")
    edge_after: int = Field(default=250, description="Edge rule: keep t only if t + edge_after < n")
    clip_length: int = Field(default=500, description="Samples per clip")
    rule2_before: int = Field(
        default=200, description="Rule 2 window starts this many samples before the clip"
    )
    rule2_window: int = Field(default=900, description="Rule 2 window length (samples)")
    snr_before: int = Field(default=99, description="SNR rows start this many samples before each peak")
    snr_after: int = Field(default=100, description="SNR rows end this many samples after each peak")
    target_snr_db: float = Field(default=15.0, description="Target sensor SNR of the source spike (dB)")
    thre_start: float = Field(
        default=0.1, description="Initial near-zero threshold of the waveform rescaling"
    )
    thre_step: float = Field(default=0.05, description="Threshold increment of the waveform rescaling")
    faithful_trough_offset: bool = Field(default=True, description="Keep the original min_ind off-by-one")
    fix_block_start: bool = Field(
        default=True, description="A peak at t = 500k stays inside its clip (original: it falls outside)"
    )

    def matlab_options(self, n_fs_regions: int) -> dict[str, Any]:
        """The ``opts`` struct of ``process_region_clips`` (vectors as lists: both backends accept them)."""
        options = self.model_dump(exclude={"filename", "leadfield_name", "keep_raw"})
        options["iterations"] = [int(m) for m in self.iterations]
        options["n_fs_regions"] = n_fs_regions
        options["skip_done_iterations"] = False  # the asset wipes partial state itself (see regions.py)
        return options
