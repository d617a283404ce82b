"""New-session sensor: dispatch sessions under the data root once their files stop changing."""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.outputs import dispatched_in, read_manifest
from ephys_assets.dispatch.plan import plan_dispatch, resolve_params
from ephys_assets.dispatch.sessions import data_root_entries
from ephys_assets.dispatch.watch import detect_input_format, session_state
from ephys_assets.jobs import ephys_dispatch_job
from ephys_assets.partitions import RECORDINGS
from resources.ephys_paths import EphysPaths


@dataclass
class TickPlan:
    """What one sensor tick decided (pure, so it can be tested without Dagster)."""

    ready: dict[str, str] = field(default_factory=dict)  # session → fingerprint, new or changed and quiet
    waiting: list[str] = field(default_factory=list)  # changed but not quiet yet
    removed: list[str] = field(default_factory=list)


def plan_tick(data_root: Path, cursor: dict[str, Any], now: float, quiet_seconds: float) -> TickPlan:
    plan = TickPlan()
    seen = set()
    for entry in data_root_entries(data_root):
        seen.add(entry.name)
        state = session_state(entry)
        if state.n_files == 0 or cursor.get(entry.name, {}).get("fingerprint") == state.fingerprint:
            continue
        if now - state.newest_mtime < quiet_seconds:
            plan.waiting.append(entry.name)
            continue
        plan.ready[entry.name] = state.fingerprint
    plan.removed = sorted(set(cursor) - seen)
    return plan


@dg.sensor(
    name="ephys_new_session_sensor",
    job=ephys_dispatch_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Adds one `recordings` partition per job of every new or changed session and requests its run; "
    "a session whose current content is already dispatched into the results folder (by this sensor or by "
    "ephys-dispatch) is left alone.",
)
def ephys_new_session_sensor(context: dg.SensorEvaluationContext, ephys_paths: EphysPaths) -> dg.SensorResult:
    cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    data_root, results_root = ephys_paths.data_path, ephys_paths.results_path
    tick = plan_tick(data_root, cursor, time.time(), ephys_paths.sensor_quiet_seconds)
    existing = set(context.instance.get_dynamic_partitions(RECORDINGS))
    run_requests, add_keys, delete_keys = [], [], []
    for name in tick.removed:
        delete_keys += [k for k in cursor.pop(name).get("keys", []) if k in existing]
    for name, fingerprint in tick.ready.items():
        manifest_path = dispatched_in(results_root, name, fingerprint)
        if manifest_path is not None:
            keys = [job["partition_key"] for job in (read_manifest(manifest_path.parent) or {}).get("jobs", [])]
            context.log.info(f"session {name}: this content is already dispatched ({manifest_path}); not again")
            cursor[name] = {"fingerprint": fingerprint, "keys": keys, "dispatched": str(manifest_path)}
            continue
        if detect_input_format(data_root / name) is None:
            cursor[name] = {"fingerprint": fingerprint, "keys": [], "skipped": "not an ephys session"}
            continue
        try:
            plan = plan_dispatch(data_root, resolve_params(data_root, name, {}), [name])
        except DispatchError as exc:
            context.log.warning(f"session {name} not dispatched: {exc}")
            cursor[name] = {"fingerprint": fingerprint, "keys": [], "error": str(exc)}
            continue
        old_keys = set(cursor.get(name, {}).get("keys", []))
        delete_keys += sorted(k for k in old_keys - set(plan.keys) if k in existing)
        add_keys += [k for k in plan.keys if k not in existing]
        run_requests += [
            dg.RunRequest(
                run_key=f"{key}@{fingerprint[:16]}",
                partition_key=key,
                run_config={"ops": {"ephys_job": {"config": {"sessions": [name]}}}},
                tags={"session": name},
            )
            for key in plan.keys
        ]
        cursor[name] = {"fingerprint": fingerprint, "keys": list(plan.keys)}
    partition_requests = []
    if delete_keys:
        partition_requests.append(
            dg.DeleteDynamicPartitionsRequest(partitions_def_name=RECORDINGS, partition_keys=delete_keys)
        )
    if add_keys:
        partition_requests.append(dg.AddDynamicPartitionsRequest(partitions_def_name=RECORDINGS, partition_keys=add_keys))
    if tick.waiting:
        context.log.info(f"waiting for sessions to become quiet: {tick.waiting}")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=json.dumps(cursor, sort_keys=True),
    )
