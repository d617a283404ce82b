"""Everything of the ephys domain: its asset, job, sensor and resource (merged in ``neuro_pipelines.definitions``)."""

import dagster as dg

from ephys_assets.assets import ephys_job
from ephys_assets.jobs import ephys_dispatch_job
from ephys_assets.sensors import ephys_new_session_sensor
from resources.ephys_paths import EphysPaths

defs = dg.Definitions(
    assets=[ephys_job],
    jobs=[ephys_dispatch_job],
    sensors=[ephys_new_session_sensor],
    resources={"ephys_paths": EphysPaths()},
)
