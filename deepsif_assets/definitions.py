"""Everything of the DeepSIF domain: its assets, jobs and resources (merged in ``neuro_pipelines.definitions``)."""

import warnings

import dagster as dg

from deepsif_assets.assets import DEEPSIF_ASSETS, REGION_ASSETS, synthetic_source
from deepsif_assets.scaleout import deepsif_regions_celery
from resources.deepsif_paths import DeepsifPaths
from resources.octave import OctaveResource

REGION_JOB = "deepsif_region_job"
SYNTHETIC_JOB = "deepsif_synthetic_job"

# One region per run: simulation, then extraction and clean-up (the UI's "Materialize" of a partition). Asset
# backfills batch the simulation (raw_nmm's backfill policy) and keep one extraction run per region; Dagster
# notes that the two assets of the region jobs differ in that respect, which is the point.
warnings.filterwarnings("ignore", message=r"Asset job deepsif_\w+ materializes assets with varying Backfill")
deepsif_region_job = dg.define_asset_job(
    REGION_JOB,
    selection=dg.AssetSelection.assets(*REGION_ASSETS),
    description="One region: raw_nmm (simulation) → nmm_spikes (Octave clip extraction, raw clean-up).",
)
deepsif_synthetic_job = dg.define_asset_job(
    SYNTHETIC_JOB,
    selection=dg.AssetSelection.assets(synthetic_source),
    description="The synthetic source over every region whose clips are materialized.",
)

defs = dg.Definitions(
    assets=DEEPSIF_ASSETS,
    jobs=[deepsif_region_job, deepsif_synthetic_job, deepsif_regions_celery],
    resources={"deepsif_paths": DeepsifPaths(), "octave": OctaveResource()},
)
