"""The single ``Definitions`` object of this code location (``workspace.yaml`` points here).

Each domain builds its own ``Definitions`` (assets, resources, sensors, jobs); this module only merges them and
adds what spans both: the declarative-automation sensor.
"""

import dagster as dg

from deepsif_assets.definitions import defs as deepsif_defs
from ephys_assets.definitions import defs as ephys_defs

# Evaluates the automation conditions of every asset (e.g. the synthetic source once its regions are done).
# On by default, so a fresh `dagster dev` automates without a click; switch it off in the UI (Automation tab).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)

defs = dg.Definitions.merge(ephys_defs, deepsif_defs, dg.Definitions(sensors=[automation_sensor]))
