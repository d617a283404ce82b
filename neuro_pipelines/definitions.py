"""The single ``Definitions`` object of this code location (``workspace.yaml`` points here).

Each domain lists its assets, jobs, sensors and resources in its own definitions module; this one merges them
and adds what spans both: the declarative-automation sensor, the run-hygiene sensor and the executor (every
run executes in one process: a region's steps run one after the other anyway, and a run is then exactly one
process that a crash takes down, which run hygiene can see).
"""

import dagster as dg

import deepsif_assets.definitions as deepsif
import ephys_assets.definitions as ephys
from neuro_pipelines.celery_watch import celery_worker_loss_sensor
from neuro_pipelines.sensors import automation_sensor, run_hygiene_sensor

defs = dg.Definitions.merge(
    ephys.defs,
    deepsif.defs,
    dg.Definitions(
        sensors=[automation_sensor, run_hygiene_sensor, celery_worker_loss_sensor],
        executor=dg.in_process_executor,
    ),
)
