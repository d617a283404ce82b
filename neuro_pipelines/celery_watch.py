"""Lost Celery workers: end the steps they held, so that runs fail (and run retries re-run them) instead of waiting.

A Celery worker that disappears as a whole (machine down, ``kill -9`` of the worker and its pool, network cut)
acknowledges nothing and sends no result. With late acknowledgement Redis would hand its step to another worker
only after the visibility timeout (12 h, longer than any step), so the run would wait silently that long.
Celery itself reports only the loss of a pool *process* (``WorkerLostError``), not of the worker.

The ``celery_worker_loss_sensor`` (run by the daemon) watches the started runs of the Celery job. The worker of
each step in flight is named in the run's event log ("Executing steps … in celery worker", metadata
``Celery worker``); the sensor pings those workers through the broker. A worker that stays silent for
:data:`LOST_AFTER_ENV` seconds (default :data:`DEFAULT_LOST_AFTER_S`) while the broker answers is lost: its step's
task is failed in the result backend with a ``WorkerLostError`` naming the worker, so the run's own executor fails
the run (failure reason RUN_EXCEPTION, which run retries retry), and the task message is withdrawn from the broker
and revoked, so it is never delivered a second time. A broker that cannot be reached accuses nobody.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from neuro_pipelines.instance import CELERY_TAG

LOST_AFTER_ENV = "NEURO_CELERY_WORKER_LOST_AFTER_S"
DEFAULT_LOST_AFTER_S = 120.0
PING_TIMEOUT_S = 5.0
WORKER_METADATA = "Celery worker"  # set by dagster-celery on the engine event a worker writes when a step starts
_STEP_ENDED = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
               dg.DagsterEventType.STEP_UP_FOR_RETRY, dg.DagsterEventType.STEP_SKIPPED}
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepInFlight:
    run_id: str
    step_key: str
    worker: str  # Celery node name, NAME@host


def lost_after_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How long a worker may stay silent before it counts as lost (``$NEURO_CELERY_WORKER_LOST_AFTER_S``)."""
    value = (os.environ if environ is None else environ).get(LOST_AFTER_ENV)
    return float(value) if value else DEFAULT_LOST_AFTER_S


def steps_in_flight(instance: dg.DagsterInstance, run_id: str) -> list[StepInFlight]:
    """Steps of ``run_id`` that a Celery worker started and that have not ended, with that worker."""
    started: dict[str, str] = {}
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.ENGINE_EVENT, *_STEP_ENDED}, limit=10_000
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        step = record.event_log_entry.step_key
        if event is None or step is None:
            continue
        if event.is_engine_event:
            worker = event.engine_event_data.metadata.get(WORKER_METADATA)
            if worker is not None:
                started[step] = str(getattr(worker, "value", worker))
        elif event.event_type in _STEP_ENDED:
            started.pop(step, None)
    return [StepInFlight(run_id, step, worker) for step, worker in started.items()]


def _celery_app(run: dg.DagsterRun) -> Any:
    """A Celery app on the run's broker and result backend (as the run's executor resolves them)."""
    from celery import Celery

    from deepsif_assets.scaleout import celery_executor_config

    execution = (run.run_config or {}).get("execution") or {}
    config = execution.get("config") or execution.get("celery") or {}
    resolved = celery_executor_config(config)
    app = Celery("neuro-celery-watch", broker=resolved["broker"], backend=resolved["backend"])
    app.conf.update(resolved["config_source"])
    app.conf.broker_connection_retry = False
    app.conf.broker_connection_timeout = PING_TIMEOUT_S
    return app


def _queued_messages(app: Any) -> Iterator[tuple[str, str, str, list[str]]]:
    """Delivered, unacknowledged step messages in Redis: (delivery tag, task id, run id, step keys)."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for tag, raw in channel.client.hgetall(channel.unacked_key).items():
            message = json.loads(raw)[0]
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            _args, kwargs, _embed = json.loads(body)
            step_args = kwargs.get("execute_step_args_packed") or {}
            yield (
                tag.decode() if isinstance(tag, bytes) else tag,
                message["headers"]["id"],
                step_args.get("pipeline_run_id") or step_args.get("run_id"),
                list(step_args.get("step_keys_to_execute") or []),
            )


def fail_lost_step(app: Any, step: StepInFlight, silent_s: float) -> str | None:
    """Fail the Celery task of ``step`` with a ``WorkerLostError`` naming its worker and withdraw its message.

    Returns the task id, or None when the message is not (or no longer) held by the broker.
    """
    from celery.exceptions import WorkerLostError

    for tag, task_id, run_id, step_keys in list(_queued_messages(app)):
        if run_id != step.run_id or step.step_key not in step_keys:
            continue
        message = (
            f"Celery worker {step.worker} was lost while running step {step.step_key}: it has not answered "
            f"through the broker for {silent_s:.0f} s (machine down, worker killed or cut off). The step was "
            "failed and withdrawn from the broker so that it never runs twice; run retries re-run the region."
        )
        app.backend.mark_as_failure(task_id, WorkerLostError(message))
        with app.connection_for_write() as connection:
            connection.default_channel.qos.reject(tag, requeue=False)
        app.control.revoke(task_id)  # in case a copy was delivered elsewhere meanwhile
        return task_id
    return None


@dg.sensor(
    name="celery_worker_loss_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Fails the steps of Celery runs whose worker stopped answering through the broker (machine "
    f"lost, worker killed), so the runs fail and are retried instead of waiting for Redis' visibility timeout; "
    f"a worker counts as lost after ${LOST_AFTER_ENV} seconds of silence (default {DEFAULT_LOST_AFTER_S:.0f}).",
)
def celery_worker_loss_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason | dg.SensorResult:
    from kombu.exceptions import OperationalError

    runs = context.instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={CELERY_TAG: "celery"})
    )
    silent_since: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    in_flight = [(run, step) for run in runs for step in steps_in_flight(context.instance, run.run_id)]
    if not in_flight:
        return dg.SensorResult(skip_reason="no Celery steps in flight", cursor="{}")
    now, lost_after = time.time(), lost_after_seconds()
    failed, watching = [], {}
    for run, step in in_flight:
        app = _celery_app(run)
        try:
            replies = app.control.ping(destination=[step.worker], timeout=PING_TIMEOUT_S) or []
        except (OperationalError, OSError) as exc:
            # The broker is down: that is no worker's fault (and a restart is handled by the runs themselves).
            context.log.warning(f"broker unreachable, no worker judged: {exc}")
            return dg.SensorResult(skip_reason="broker unreachable", cursor="{}")
        if any(step.worker in reply for reply in replies):
            continue
        since = silent_since.get(step.worker, now)
        watching[step.worker] = since
        if now - since < lost_after:
            continue
        task_id = fail_lost_step(app, step, now - since)
        context.log.warning(
            f"run {run.run_id}: Celery worker {step.worker} silent for {now - since:.0f} s while running "
            f"{step.step_key}; " + (f"failed its task {task_id}" if task_id else "its task is no longer queued")
        )
        if task_id:
            failed.append(f"{run.run_id}:{step.step_key}@{step.worker}")
    summary = f"failed {len(failed)} step(s) of lost workers: {failed}" if failed else (
        f"watching silent workers: {sorted(watching)}" if watching else "every worker answered"
    )
    return dg.SensorResult(skip_reason=summary, cursor=json.dumps(watching, sort_keys=True))
