"""Definitions of the ``deepsif`` group: per-region simulation and clips, the synthetic source, resources."""

import dagster as dg

from deepsif_assets.assets import DEEPSIF_REGION_ASSETS
from deepsif_assets.resources import DEEPSIF_RESOURCES

REGION_JOB_NAME = "deepsif_region_job"

# One region per run: simulation, then extraction + cleanup (the CLI and backfills launch one run per partition).
deepsif_region_job = dg.define_asset_job(
    REGION_JOB_NAME,
    selection=dg.AssetSelection.assets(*DEEPSIF_REGION_ASSETS),
    description="One region: raw_nmm (simulation) → nmm_spikes (Octave clip extraction, raw cleanup).",
)

defs = dg.Definitions(assets=DEEPSIF_REGION_ASSETS, jobs=[deepsif_region_job], resources=DEEPSIF_RESOURCES)
