"""The single ``Definitions`` object of this code location (``workspace.yaml`` points here).

Each domain builds its own ``Definitions`` (assets, resources, sensors, jobs); this module only merges them and
adds what spans both: the declarative-automation sensor. Domain modules are imported as modules so that exactly
one ``Definitions`` object lives at this module's scope (Dagster refuses several).
"""

import dagster as dg

import deepsif_assets.definitions as deepsif_definitions
import deepsif_assets.scaleout as deepsif_scaleout
import deepsif_assets.synthetic.definitions as synthetic_definitions
import ephys_assets.definitions as ephys_definitions

# Evaluates the automation conditions of every asset (e.g. the synthetic source once its regions are done).
# On by default, so a fresh `dagster dev` automates without a click; switch it off in the UI (Automation tab).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)

defs = dg.Definitions.merge(
    ephys_definitions.defs,
    deepsif_definitions.defs,
    synthetic_definitions.defs,
    deepsif_scaleout.defs,
    dg.Definitions(sensors=[automation_sensor]),
)
