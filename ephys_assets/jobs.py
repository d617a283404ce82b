"""The named job of the ephys domain: the sensor, ephys-dispatch, backfills and the UI all run it."""

import dagster as dg

from ephys_assets.assets import ephys_job

DISPATCH_JOB = "ephys_dispatch_job"

ephys_dispatch_job = dg.define_asset_job(
    DISPATCH_JOB,
    selection=dg.AssetSelection.assets(ephys_job),
    description="One recording partition: write its job JSON, reload it, update the session's manifest.",
)
