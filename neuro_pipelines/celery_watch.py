"""Lost Celery workers: end the steps they held, so that runs fail (and run retries re-run them) instead of waiting.

A Celery worker that disappears as a whole (machine down, ``kill -9`` of the worker and its pool, network cut)
acknowledges nothing and sends no result. With late acknowledgement Redis would hand its step to another worker
only after the visibility timeout (12 h, longer than any step), so the run would wait silently that long.
Celery itself reports only the loss of a pool *process* (``WorkerLostError``), not of the worker.

The ``celery_worker_loss_sensor`` (run by the daemon) watches the started runs with Celery steps. The worker of
each step in flight is named in the run's event log ("Executing steps … in celery worker", metadata
``Celery worker``); the sensor pings those workers through the broker. A worker that stays silent for
:data:`LOST_AFTER_ENV` seconds (default :data:`DEFAULT_LOST_AFTER_S`) while the broker answers is lost: its step's
task is failed in the result backend with a ``WorkerLostError`` naming the worker, so the run's own executor fails
the run (failure reason RUN_EXCEPTION, which run retries retry); the task message is withdrawn from the broker and
revoked, so it is never delivered a second time; and the step's pool slot is given back (a lost step never reports
its end, which is what frees it). A broker that cannot be reached accuses nobody.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

LOST_AFTER_ENV = "NEURO_CELERY_WORKER_LOST_AFTER_S"
DEFAULT_LOST_AFTER_S = 120.0
PING_TIMEOUT_S = 5.0
WORKER_METADATA = "Celery worker"  # set by dagster-celery on the engine event a worker writes when a step starts
_STEP_ENDED = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
               dg.DagsterEventType.STEP_UP_FOR_RETRY, dg.DagsterEventType.STEP_SKIPPED}


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


def _celery_settings(run: dg.DagsterRun) -> dict[str, Any]:
    """The run's broker, result backend and Celery settings, resolved as its executor resolves them."""
    from deepsif_assets.scaleout import celery_executor_config

    execution = (run.run_config or {}).get("execution") or {}
    return celery_executor_config(execution.get("config") or execution.get("celery") or {})


def _celery_app(settings: Mapping[str, Any]) -> Any:
    """A Celery app on a broker and result backend that gives up at once when the broker is unreachable."""
    from celery import Celery

    app = Celery("neuro-celery-watch", broker=settings["broker"], backend=settings["backend"])
    app.conf.update(settings["config_source"])
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

    # Every started run, not only those tagged by the Celery job: runs created through the Python API may lack
    # the job's tags. Only steps that a Celery worker announced count (none for in-process runs).
    runs = context.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    silent_since: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    in_flight = [(run, step) for run in runs for step in steps_in_flight(context.instance, run.run_id)]
    if not in_flight:
        return dg.SensorResult(skip_reason="no Celery steps in flight", cursor="{}")
    now, lost_after = time.time(), lost_after_seconds()
    failed, watching = [], {}
    by_broker: dict[tuple[str, str], list[tuple[dg.DagsterRun, StepInFlight, dict[str, Any]]]] = {}
    for run, step in in_flight:
        settings = _celery_settings(run)
        by_broker.setdefault((settings["broker"], settings["backend"]), []).append((run, step, settings))
    for steps in by_broker.values():
        app = _celery_app(steps[0][2])
        try:
            # One ping for every worker in flight on this broker (a silent one costs the whole timeout).
            replies = app.control.ping(destination=sorted({s.worker for _, s, _ in steps}), timeout=PING_TIMEOUT_S)
        except (OperationalError, OSError) as exc:
            # The broker is down: that is no worker's fault (and a restart is handled by the runs themselves).
            context.log.warning(f"broker unreachable, no worker judged: {exc}")
            return dg.SensorResult(skip_reason="broker unreachable", cursor="{}")
        answered = {name for reply in replies or [] for name in reply}
        for run, step, _settings in steps:
            if step.worker in answered:
                continue
            since = silent_since.get(step.worker, now)
            watching[step.worker] = since
            if now - since < lost_after:
                continue
            task_id = fail_lost_step(app, step, now - since)
            # The lost step will never report its end, which is what would give back its pool slot.
            context.instance.event_log_storage.free_concurrency_slot_for_step(step.run_id, step.step_key)
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
