"""Definitions of the ``ephys`` group: job-dispatch assets, resources and the new-session sensor."""

import dagster as dg

from ephys_assets.assets import ephys_job
from ephys_assets.sensors import ephys_new_session_sensor
from resources.ephys_paths import EphysPaths

defs = dg.Definitions(
    assets=[ephys_job],
    sensors=[ephys_new_session_sensor],
    resources={"ephys_paths": EphysPaths()},
)
