"""Scale-out of the per-region DeepSIF steps onto Celery workers (``dagster-celery`` with a Redis broker).

The job ``deepsif_regions_celery`` runs ``raw_nmm`` → ``nmm_spikes`` for ONE region partition per run, each step as
a Celery task on whichever worker takes it. Workers must share the Dagster instance (``DAGSTER_HOME`` with the same
``dagster.yaml``; PostgreSQL across machines) and the DeepSIF anatomy/source folders (same paths on every machine).

Where the broker is comes from run config (``execution: config: broker``) or, if absent, from the environment of
the process that runs the job: ``DAGSTER_CELERY_BROKER_URL`` (result backend ``DAGSTER_CELERY_BACKEND_URL``, else
the broker). It is read when a run starts, never when the definitions load, so loading needs no broker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.storage.tags import RETRY_ON_ASSET_OR_OP_FAILURE_TAG
from dagster_celery import celery_executor

from deepsif_assets.assets import REGION_ASSETS
from neuro_pipelines.instance import CELERY_TAG

JOB_NAME = "deepsif_regions_celery"
BROKER_ENV = "DAGSTER_CELERY_BROKER_URL"
BACKEND_ENV = "DAGSTER_CELERY_BACKEND_URL"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"

# `acks_late` + prefetch 1: a busy worker holds no second task, so a free worker takes it. A step can run for hours
# and Redis re-delivers a message not acknowledged within the visibility timeout, so that must exceed the longest
# step. A killed pool process fails its step (no re-delivery loop of a step that kills its worker, e.g. by OOM).
CELERY_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {
        "visibility_timeout": 12 * 3600,
        # dagster-celery's own defaults for publishing retries, kept because this dict replaces them.
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
}


def celery_executor_config(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Complete the user's executor config: broker/backend from the environment, our Celery settings underneath."""
    env = os.environ if environ is None else environ
    broker = config.get("broker") or env.get(BROKER_ENV) or DEFAULT_BROKER_URL
    backend = config.get("backend") or env.get(BACKEND_ENV) or broker
    settings = {**CELERY_SETTINGS, **(config.get("config_source") or {})}
    resolved: dict[str, Any] = {"broker": broker, "backend": backend, "config_source": settings}
    if config.get("include"):
        resolved["include"] = list(config["include"])
    if config.get("retries") is not None:
        resolved["retries"] = config["retries"]
    return resolved


# Same keys as `dagster_celery.celery_executor` (so one YAML serves the workers and the runs); all optional.
# The config function runs when a run's config is processed, so the environment is read then, not at import.
deepsif_celery_executor = celery_executor.configured(
    lambda config: celery_executor_config(config),
    config_schema={
        "broker": dg.Field(
            dg.Noneable(dg.StringSource), is_required=False, description=f"Default ${BROKER_ENV}"
        ),
        "backend": dg.Field(
            dg.Noneable(dg.StringSource),
            is_required=False,
            description=f"Default ${BACKEND_ENV}, else the broker",
        ),
        "include": dg.Field([str], is_required=False, description="Modules every worker should import"),
        "config_source": dg.Field(
            dg.Noneable(dg.Permissive()),
            is_required=False,
            description="Celery settings over CELERY_SETTINGS",
        ),
        "retries": dg.Field(
            dg.Permissive(), is_required=False, description="Dagster step retries (executor)"
        ),
    },
    name="celery",
)

deepsif_regions_celery = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.assets(*REGION_ASSETS),
    executor_def=deepsif_celery_executor,
    description="One region: TVB simulation then Octave clip extraction, each step on a Celery worker.",
    # A step that fails on a worker may have failed because of the worker's machine or the broker (Dagster can
    # record a result lost in a broker restart as a step failure): run retries re-run it from the failed step
    # even though the instance retries crashes only. A region that fails for a reason of its own fails again.
    tags={CELERY_TAG: "celery", RETRY_ON_ASSET_OR_OP_FAILURE_TAG: "true"},
)
