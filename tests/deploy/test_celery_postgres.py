"""The Celery deployment on PostgreSQL, end to end, on one host (the stack: ``conftest.py``).

Runs are launched the way users launch them (GraphQL ``launchPipelineExecution``, as the Launchpad does), land in
the queue and are started by the daemon; region steps run on two Celery workers that share only PostgreSQL,
Redis and the data folder. Faults are real: a worker's whole process group is killed with SIGKILL mid-simulation,
and the Redis server is stopped and started again while steps wait in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
import yaml

from deepsif_assets import scaleout
from ephys_assets import sample_data
from ephys_assets.jobs import DISPATCH_JOB
from ephys_assets.partitions import RECORDINGS
from neuro_core.locks import exclusive_lock
from neuro_core.project import PROJECT_ROOT
from neuro_pipelines.celery_watch import WORKER_METADATA
from tests.support.region_fixtures import REGION_ASSET_NAMES, mat_tree, run_regions_in_process

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

# Small but not trivial: 2 × 3 s of one noise setting gives clips in some regions (0, 1 and 5 of 0-5).
SHORT_CONFIG = {
    "raw_nmm": {"config": {"segment_ms": 3000.0, "n_segments": 2, "dt": 0.5, "iterations": [0]}},
    "nmm_spikes": {"config": {"iterations": [0]}},
}
# Long enough to be killed in the middle of its simulation (≈ 4× SHORT_CONFIG).
LONG_CONFIG = {
    "raw_nmm": {"config": {"segment_ms": 3000.0, "n_segments": 8, "dt": 0.5, "iterations": [0]}},
    "nmm_spikes": {"config": {"iterations": [0]}},
}
BACKFILL_REGIONS = [str(r) for r in range(6)]
BROKER_REGIONS = ["10", "11", "12"]  # three long steps for two workers: one waits in Redis for a while
# ≈ 12 s of engine per step instead of LONG_CONFIG's ≈ 3 s, so that the three runs' steps overlap even when their
# launches are spread out under load (one CI run saw no step waiting in the broker within 300 s)
BROKER_CONFIG = {**LONG_CONFIG, "raw_nmm": {"config": {**LONG_CONFIG["raw_nmm"]["config"], "n_segments": 32}}}
LOSS_REGION = "20"
_ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


# ---- helpers -----------------------------------------------------------------------------------------------------
def region_run_config(stack: Any, ops: dict[str, Any]) -> dict[str, Any]:
    """deploy/celery/run_config_regions.yaml with the test's shared source folder and a small configuration."""
    config = yaml.safe_load((PROJECT_ROOT / "deploy" / "celery" / "run_config_regions.yaml").read_text())
    config["resources"]["deepsif_paths"]["config"] = {"source_dir": str(stack.source_dir)}  # anatomy: the repo's
    config["ops"] = ops
    return config


def submit_regions(stack: Any, regions: list[str], ops: dict[str, Any]) -> dict[str, str]:
    """Region → run id, each queued through the webserver's GraphQL API."""
    return {
        region: stack.submit(scaleout.JOB_NAME, region_run_config(stack, ops), {"dagster/partition": region})
        for region in regions
    }


def add_regions(stack: Any, regions: list[str]) -> None:
    """``neuro-partitions add regions …`` from a machine of its own, as an operator would."""
    env, work = stack.machine("operator")
    done = subprocess.run(
        [sys.executable, "-m", "neuro_pipelines.partitions_cli", "add", "regions", *regions],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def region_files(source_dir: Path, regions: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Clips, markers and peak-window caches of ``regions`` (everything else in the folder is shared state)."""
    wanted = re.compile(r"/a(\d+)[/.]|iter_\d+_i_(\d+)\.mat$")
    return {
        name: variables
        for name, variables in mat_tree(source_dir).items()
        if (m := wanted.search("/" + name)) and (m.group(1) or m.group(2)) in regions
    }


def assert_same_files(actual: dict[str, dict[str, np.ndarray]], reference: dict[str, dict[str, np.ndarray]]) -> None:
    assert sorted(actual) == sorted(reference)
    for name, variables in reference.items():
        assert sorted(actual[name]) == sorted(variables), name
        for variable, value in variables.items():
            np.testing.assert_array_equal(actual[name][variable], value, err_msg=f"{name}:{variable}")


def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key → the Celery worker that (last) started it, from the engine events the workers write."""
    workers = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.engine_event_data.metadata
        if record.step_key and WORKER_METADATA in metadata:
            workers[record.step_key] = metadata[WORKER_METADATA].value
    return workers


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    (record,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    data = record.dagster_event.job_failure_data
    return (record.user_message or "") + "\n" + (data.error.to_string() if data.error else "")


def retry_of(stack: Any, run_id: str, timeout_s: float) -> dg.DagsterRun:
    """The automatic retry (run_retries in dagster.yaml) of a failed run, once it has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        with stack.instance() as instance:
            retries = [r for r in instance.get_runs() if r.parent_run_id == run_id]
        if retries:
            return stack.wait_for_runs([retries[0].run_id], max(deadline - time.monotonic(), 1))[retries[0].run_id]
        if time.monotonic() > deadline:
            pytest.fail(f"no retry of run {run_id} after {timeout_s} s\n{retry_diagnosis(stack, run_id)}")
        time.sleep(1)


def retry_diagnosis(stack: Any, run_id: str) -> str:
    """Why a failed run was not retried: its retry tags, its engine events and the daemon's retry lines."""
    with stack.instance() as instance:
        run = instance.get_run_by_id(run_id)
        events = [r.user_message for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]
    tags = {k: v for k, v in run.tags.items() if "retry" in k or "failure" in k}
    daemon_lines = [
        line for line in (stack.logs / "daemon.log").read_text(errors="replace").splitlines()
        if re.search(r"retr|error|exception|EventLogConsumer|heartbeat", line, re.IGNORECASE)
    ]
    return "\n".join(
        [f"run tags: {tags}", "engine events:", *events[-8:], "daemon retry lines:", *daemon_lines[-30:], stack.log_tails()]
    )


def leftovers(source_dir: Path) -> list[str]:
    """Temp files of interrupted writes (atomic_path's .*.tmp, save_atomic.m's .partial_*) and raw data left."""
    names = [p for p in source_dir.rglob("*") if p.name.startswith(".partial_") or p.name.endswith(".tmp")]
    raw = source_dir / "raw_nmm"
    return [str(p) for p in names] + ([str(p) for p in raw.iterdir()] if raw.is_dir() else [])


def assert_unlocked(source_dir: Path, regions: list[str]) -> None:
    """Every region lock can be taken at once (flock dies with its holder; nothing keeps one)."""
    for region in regions:
        with exclusive_lock(source_dir / ".locks" / f"a{region}.lock", "test: is it free?"):
            pass


def broker_messages(url: str) -> tuple[int, int]:
    """Step messages in the broker: (queued in any priority list of the `dagster` queue, delivered but unacked)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        queued = sum(client.llen(k) for k in client.keys("dagster*") if client.type(k) == b"list")
        return queued, client.hlen("unacked")
    finally:
        client.close()


def _runs_report(stack: Any, run_ids: dict[str, str]) -> str:
    """Each region's run: its status, and why it failed."""
    lines = []
    with stack.instance() as instance:
        for region, run_id in run_ids.items():
            run = instance.get_run_by_id(run_id)
            why = failure_message(instance, run_id) if run.status == dg.DagsterRunStatus.FAILURE else ""
            lines.append(f"region {region}: run {run_id} {run.status.value} {why}".rstrip())
    return "\n".join(lines)


# ---- a. backfill -----------------------------------------------------------------------------------------------
def test_region_backfill_runs_on_both_workers_and_matches_in_process(stack, tmp_path):
    reference_dir = tmp_path / "in-process"
    in_process_s = run_regions_in_process(reference_dir, BACKFILL_REGIONS, SHORT_CONFIG)

    add_regions(stack, BACKFILL_REGIONS)
    started = time.monotonic()
    run_ids = submit_regions(stack, BACKFILL_REGIONS, SHORT_CONFIG)
    runs = stack.wait_for_runs(list(run_ids.values()), timeout_s=600)
    celery_s = time.monotonic() - started
    print(f"6-region backfill: {celery_s:.1f} s on two Celery workers, {in_process_s:.1f} s in-process")

    used = set()
    with stack.instance() as instance:
        for region, run_id in run_ids.items():
            assert runs[run_id].status == dg.DagsterRunStatus.SUCCESS, failure_message(instance, run_id)
            # Queued, then dequeued by the daemon (not launched directly by the webserver).
            assert instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED), region
            ran_on = step_workers(instance, run_id)
            assert set(ran_on) == set(REGION_ASSET_NAMES), ran_on
            used |= set(ran_on.values())
        for asset in REGION_ASSET_NAMES:
            assert set(BACKFILL_REGIONS) <= instance.get_materialized_partitions(dg.AssetKey(asset))
    assert used == {worker.hostname for worker in stack.workers.values()}, "both workers must have taken steps"

    assert_same_files(region_files(stack.source_dir, BACKFILL_REGIONS), region_files(reference_dir, BACKFILL_REGIONS))
    assert any("/a1/nmm_" in name for name in region_files(reference_dir, BACKFILL_REGIONS)), "expected clips"
    assert leftovers(stack.source_dir) == []

    # Everything Dagster keeps is in PostgreSQL: runs, events, sensor ticks, dynamic partitions; no SQLite anywhere.
    import psycopg2  # with dagster-postgres (the stack fixture skips without it)

    pg = stack.pg_env
    with contextlib.closing(psycopg2.connect(
        host=pg["DAGSTER_PG_HOST"], port=pg["DAGSTER_PG_PORT"], user=pg["DAGSTER_PG_USERNAME"],
        password=pg["DAGSTER_PG_PASSWORD"], dbname=pg["DAGSTER_PG_DB"],
    )) as connection, connection.cursor() as cursor:
        ids = tuple(run_ids.values())
        cursor.execute("SELECT count(*) FROM runs WHERE run_id IN %s", (ids,))
        assert cursor.fetchone()[0] == len(ids)
        cursor.execute("SELECT count(DISTINCT run_id) FROM event_logs WHERE run_id IN %s", (ids,))
        assert cursor.fetchone()[0] == len(ids)
        cursor.execute("SELECT count(*) FROM job_ticks")
        assert cursor.fetchone()[0] > 0, "the daemon's sensor ticks"
        cursor.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'regions'")
        assert set(BACKFILL_REGIONS) <= {row[0] for row in cursor.fetchall()}
    assert not [p for p in (stack.root / "machines").rglob("*") if p.suffix in (".db", ".sqlite")]
    # Step logs of both workers are in the shared storage folder, where the webserver reads them.
    logged = {p.parts[len(stack.storage_dir.parts)] for p in stack.storage_dir.rglob("*.out")}
    assert set(run_ids.values()) <= logged


# ---- b. ephys sensor in the daemon -----------------------------------------------------------------------------
OBSERVER = """
import json, sys
import dagster as dg
with dg.DagsterInstance.get() as instance:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=sys.argv[1], tags={"session": sys.argv[2]}))
    print(json.dumps({
        "keys": instance.get_dynamic_partitions(sys.argv[3]),
        "runs": {run.tags["dagster/partition"]: run.status.value for run in runs},
    }))
"""


def test_new_ephys_session_is_dispatched_by_the_daemon_and_seen_from_another_process(stack):
    # Copied elsewhere on the shared disk, then moved in whole and dated a minute back: a copy that finished
    # before the sensor's quiet period (EphysPaths.sensor_quiet_seconds, 30 s) began.
    staging = stack.shared / "staging"
    session = sample_data.write_spikeglx_session(
        staging, run="deploy", durations_s=(0.05,), with_np2=False, with_nidq=False
    )
    old = time.time() - 60
    for path in [*session.rglob("*"), session]:
        os.utime(path, (old, old))
    dropped = time.monotonic()
    session.rename(stack.ephys_data / session.name)

    deadline = time.monotonic() + 180
    while True:
        with stack.instance() as instance:
            runs = instance.get_runs(filters=dg.RunsFilter(job_name=DISPATCH_JOB, tags={"session": session.name}))
        if runs and all(run.status in _ENDED for run in runs):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"session not dispatched after 180 s: {[r.status for r in runs]}\n{stack.log_tails()}")
        stack.check_alive()
        time.sleep(1)
    print(f"ephys session picked up and dispatched {time.monotonic() - dropped:.1f} s after it was dropped")

    with stack.instance() as instance:
        for run in runs:
            assert run.status == dg.DagsterRunStatus.SUCCESS, failure_message(instance, run.run_id)
            assert run.tags.get("dagster/sensor_name") == "ephys_new_session_sensor"
            assert instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED)
    keys = sorted(run.tags["dagster/partition"] for run in runs)
    assert keys == ["deploy_g0__block0_imec0.ap_recording1"]
    manifest = json.loads((stack.ephys_results / session.name / "manifest.json").read_text())
    assert manifest["complete"] and (stack.ephys_results / session.name / "job_0.json").is_file()

    # A second process on another "machine", pointed only at the same PostgreSQL, sees the same.
    env, work = stack.machine("observer")
    seen = subprocess.run(
        [sys.executable, "-c", OBSERVER, DISPATCH_JOB, session.name, RECORDINGS],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert seen.returncode == 0, seen.stderr
    observed = json.loads(seen.stdout.strip().splitlines()[-1])
    assert set(keys) <= set(observed["keys"])
    assert observed["runs"] == dict.fromkeys(keys, "SUCCESS")


# ---- d. broker restart -----------------------------------------------------------------------------------------
def test_broker_restart_ends_every_run_in_bounded_time(stack):
    add_regions(stack, BROKER_REGIONS)
    with stack.instance() as instance:
        # Pools above the worker slots let steps wait in Redis (the case under test), not in the run processes.
        for pool in ("tvb", "octave"):
            instance.event_log_storage.set_concurrency_slots(pool, 8)
    try:
        run_ids = submit_regions(stack, BROKER_REGIONS, BROKER_CONFIG)
        deadline = time.monotonic() + 300
        while (waiting := broker_messages(stack.redis.url))[0] < 1:
            if time.monotonic() > deadline:
                pytest.fail(f"no step ever waited in the broker\n{_runs_report(stack, run_ids)}\n{stack.log_tails()}")
            stack.check_alive()
            time.sleep(0.2)
        stack.redis.stop()
        stopped = time.monotonic()
        time.sleep(5)
        stack.redis.start()
        runs = stack.wait_for_runs(list(run_ids.values()), timeout_s=400)
        ended_s = time.monotonic() - stopped
        outcomes = {}
        with stack.instance() as instance:
            for region, run_id in run_ids.items():
                if runs[run_id].status == dg.DagsterRunStatus.SUCCESS:
                    outcomes[region] = "succeeded"
                    continue
                # Failing is allowed only with the broker named (no silent wait), and the retry must finish it.
                message = failure_message(instance, run_id)
                assert stack.redis.url.split("//")[1].split("/")[0] in message, message
                retry = retry_of(stack, run_id, timeout_s=300)
                assert retry.status == dg.DagsterRunStatus.SUCCESS, failure_message(instance, retry.run_id)
                reason = re.search(r"\[\w+\]: ([^\n]+)", message)
                outcomes[region] = f"failed ({(reason.group(1) if reason else message)[:120]}), retry succeeded"
            recovered_s = time.monotonic() - stopped
            for asset in REGION_ASSET_NAMES:
                assert set(BROKER_REGIONS) <= instance.get_materialized_partitions(dg.AssetKey(asset))

        # The broker kept every message across the restart; each one is consumed, none stays behind.
        deadline = time.monotonic() + 120
        while broker_messages(stack.redis.url) != (0, 0):
            assert time.monotonic() < deadline, f"messages left in the broker: {broker_messages(stack.redis.url)}"
            time.sleep(1)
        with stack.instance() as instance:
            for run_id in run_ids.values():
                run = instance.get_run_by_id(run_id)
                if run.status != dg.DagsterRunStatus.FAILURE:
                    continue
                # A step delivered after its run had failed refused to start (before any lock or file).
                failed_at = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].timestamp
                for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START):
                    if record.timestamp > failed_at:
                        (refusal,) = [
                            r for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
                            if r.step_key == record.step_key and r.timestamp > record.timestamp
                        ]
                        assert "StepOfEndedRunError" in refusal.dagster_event.step_failure_data.error.to_string()
        print(
            f"broker restart (down 5 s; {waiting[0]} step(s) queued, {waiting[1]} running): every run ended "
            f"{ended_s:.1f} s after the stop, every region done {recovered_s:.1f} s after it; {outcomes}"
        )
        assert ended_s < 300
        assert leftovers(stack.source_dir) == []
        assert_unlocked(stack.source_dir, BROKER_REGIONS)
    finally:
        with stack.instance() as instance:
            for pool in ("tvb", "octave"):
                instance.event_log_storage.set_concurrency_slots(pool, stack.pool_slots)


# ---- c. worker loss ----------------------------------------------------------------------------------------------
def test_lost_worker_fails_its_run_by_name_and_the_retry_completes_on_the_other(stack, tmp_path):
    reference_dir = tmp_path / "in-process"
    run_regions_in_process(reference_dir, [LOSS_REGION], LONG_CONFIG)
    add_regions(stack, [LOSS_REGION])
    run_id = submit_regions(stack, [LOSS_REGION], LONG_CONFIG)[LOSS_REGION]

    # Wait until the simulation is under way on some worker, then kill that worker and its pool (the machine).
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:
        with stack.instance() as instance:
            progress = [r for r in instance.all_logs(run_id) if "simulated" in (r.user_message or "")]
            if progress:
                victim = step_workers(instance, run_id)["raw_nmm"].split("@")[0]
        assert time.monotonic() < deadline, f"simulation never started\n{stack.log_tails()}"
        time.sleep(0.3)
    survivor = next(name for name in stack.workers if name != victim)
    lost = stack.workers[victim]
    os.killpg(lost.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    try:
        failed = stack.wait_for_runs([run_id], timeout_s=240)[run_id]
        failed_s = time.monotonic() - killed
        with stack.instance() as instance:
            assert failed.status == dg.DagsterRunStatus.FAILURE
            message = failure_message(instance, run_id)
            assert "WorkerLostError" in message and lost.hostname in message, message
            assert instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS) == []
        retry = retry_of(stack, run_id, timeout_s=300)
        recovered_s = time.monotonic() - killed
        with stack.instance() as instance:
            assert retry.status == dg.DagsterRunStatus.SUCCESS, failure_message(instance, retry.run_id)
            assert set(step_workers(instance, retry.run_id).values()) == {stack.workers[survivor].hostname}
        print(f"worker loss: run failed {failed_s:.1f} s after the kill, region done on {survivor} {recovered_s:.1f} s after it")

        assert_same_files(region_files(stack.source_dir, [LOSS_REGION]), region_files(reference_dir, [LOSS_REGION]))
        assert leftovers(stack.source_dir) == []
        assert_unlocked(stack.source_dir, [LOSS_REGION])
        assert broker_messages(stack.redis.url) == (0, 0)  # the lost step was withdrawn, never to run twice
    finally:
        stack.stop_worker(victim)  # reap the killed group
        stack.start_worker(victim)
