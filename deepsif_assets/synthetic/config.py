"""Run configuration of the ``synthetic_source`` asset."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field


class SyntheticSourceConfig(dg.Config):
    """What ``generate_sythetic_source.m`` hard-coded as script flags, made explicit."""

    mode: Literal["train", "test"] = Field(
        default="train",
        description="train: nper=100, n_iter=48, scale SNRs 10:2:20; test: nper=10, n_iter=3, scale SNRs [10 15]",
    )
    n_sources: int = Field(default=2, ge=1, description="Source patches per sample")
    seed: int = Field(
        default=0, ge=0, description="Seed of the random stream (same inputs + seed → same file)"
    )
    filename: str = Field(default="spikes", description="Clips are read from <source_dir>/nmm_<filename>/")
    leadfield: str = Field(
        default="leadfield_75_20k.mat", description="Lead-field file in the anatomy folder"
    )
    faithful_window: bool = Field(
        default=False,
        description="Use the original peak window max(peak-50,0):max(peak+50,500) (errors near the clip edges) "
        "instead of max(peak-50,1):min(peak+50,500)",
    )
    min_clips_per_region: int = Field(
        default=1,
        ge=1,
        description="Regions with fewer clips on disk are not used as patch centres (they are listed in metadata)",
    )
    regions: list[int] | None = Field(
        default=None,
        description="Centre regions to use (0-based); default: every region whose nmm_spikes partition is materialized",
    )
    write_clip_store: bool = Field(
        default=True,
        description="Also write <mode>_sample_nmm.h5 (all clips of the used regions, ~2 MB each) that nmm_idx "
        "points into (what DeepSIF's loader opens)",
    )
