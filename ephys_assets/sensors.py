"""New-session sensor: dispatch sessions under the data root once their files stop changing."""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ephys_assets.assets import JOB_ASSET, ephys_job
from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.params import params_from_mapping
from ephys_assets.dispatch.watch import detect_input_format, read_session_params, session_state
from ephys_assets.partitions import RECORDINGS
from ephys_assets.service import plan_dispatch
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
    if data_root.is_dir():
        for entry in sorted(data_root.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            seen.add(entry.name)
            state = session_state(entry)
            if state.n_files == 0:
                continue
            if cursor.get(entry.name, {}).get("fingerprint") == state.fingerprint:
                continue
            if now - state.newest_mtime < quiet_seconds:
                plan.waiting.append(entry.name)
                continue
            plan.ready[entry.name] = state.fingerprint
    plan.removed = sorted(set(cursor) - seen)
    return plan


@dg.sensor(
    name="ephys_new_session_sensor",
    target=[ephys_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Adds one `recordings` partition per job of every new or changed session and requests its run.",
)
def ephys_new_session_sensor(context: dg.SensorEvaluationContext, ephys_paths: EphysPaths):
    cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    data_root = ephys_paths.data_path
    tick = plan_tick(data_root, cursor, time.time(), ephys_paths.sensor_quiet_seconds)
    existing = set(context.instance.get_dynamic_partitions(RECORDINGS))
    run_requests, add_keys, delete_keys = [], [], []
    for name in tick.removed:
        delete_keys += [k for k in cursor.pop(name).get("keys", []) if k in existing]
    for name, fingerprint in tick.ready.items():
        session_path = data_root / name
        try:
            overrides = read_session_params(session_path) if session_path.is_dir() else {}
            fmt = overrides.get("input") or detect_input_format(session_path)
            if fmt is None:
                cursor[name] = {"fingerprint": fingerprint, "keys": [], "skipped": "not an ephys session"}
                continue
            params = params_from_mapping({**overrides, "input": fmt})
            plan = plan_dispatch(data_root, params, [name])
        except DispatchError as exc:
            context.log.warning(f"session {name} not dispatched: {exc}")
            cursor[name] = {"fingerprint": fingerprint, "keys": [], "error": str(exc)}
            continue
        old_keys = set(cursor.get(name, {}).get("keys", []))
        delete_keys += sorted(k for k in old_keys - set(plan.keys) if k in existing)
        add_keys += [k for k in plan.keys if k not in existing]
        for key in plan.keys:
            run_requests.append(
                dg.RunRequest(
                    run_key=f"{key}@{fingerprint[:16]}",
                    partition_key=key,
                    run_config={"ops": {JOB_ASSET: {"config": {"sessions": [name], "input": fmt}}}},
                    tags={"session": name},
                )
            )
        cursor[name] = {"fingerprint": fingerprint, "keys": list(plan.keys)}
    partition_requests = []
    if delete_keys:
        partition_requests.append(
            dg.DeleteDynamicPartitionsRequest(partitions_def_name=RECORDINGS, partition_keys=delete_keys)
        )
    if add_keys:
        partition_requests.append(
            dg.AddDynamicPartitionsRequest(partitions_def_name=RECORDINGS, partition_keys=add_keys)
        )
    if tick.waiting:
        context.log.info(f"waiting for sessions to become quiet: {tick.waiting}")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=json.dumps(cursor, sort_keys=True),
    )
