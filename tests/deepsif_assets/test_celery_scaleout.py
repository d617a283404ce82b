"""Region partitions through the real Celery executor: loopback Redis, two ``dagster-celery`` workers, real assets.

The same partitions are materialized in-process into another source folder; the clips and markers the workers
wrote must be identical. Plus fast checks of the job's configuration and the ``deploy/celery`` files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

from deepsif_assets import scaleout
from neuro_core.project import PROJECT_ROOT
from neuro_pipelines.definitions import defs
from neuro_pipelines.runs import RunSpec, run_jobs
from tests.support.celery_harness import REDIS_SERVER, running_celery_workers, running_redis, worker_env
from tests.support.region_fixtures import REGION_ASSET_NAMES, mat_tree, run_regions_in_process

DEPLOY_CELERY = PROJECT_ROOT / "deploy" / "celery"
REGIONS = ["0", "1", "2"]
# Short but not trivial: 2 × 5 s of one noise setting gives a few clips per region (1, 4 and 2 observed).
SHORT_CONFIG = {
    "raw_nmm": {"config": {"segment_ms": 5000.0, "n_segments": 2, "dt": 0.5, "iterations": [0]}},
    "nmm_spikes": {"config": {"iterations": [0]}},
}
WORKERS = ["deepsif-a", "deepsif-b"]


# ---- fast checks -----------------------------------------------------------------------------------------------
def test_executor_config_reads_the_environment_at_run_time():
    env = {scaleout.BROKER_ENV: "redis://broker:6379/0"}
    resolved = scaleout.celery_executor_config({}, env)
    assert resolved["broker"] == resolved["backend"] == "redis://broker:6379/0"
    assert resolved["config_source"]["task_acks_late"] is True

    env[scaleout.BACKEND_ENV] = "redis://broker:6379/1"
    explicit = scaleout.celery_executor_config(
        {"broker": "redis://other:1/0", "config_source": {"worker_prefetch_multiplier": 4}}, env
    )
    assert (explicit["broker"], explicit["backend"]) == ("redis://other:1/0", "redis://broker:6379/1")
    assert explicit["config_source"]["worker_prefetch_multiplier"] == 4
    assert scaleout.celery_executor_config({}, {})["broker"] == scaleout.DEFAULT_BROKER_URL


def test_the_job_is_part_of_the_definitions_without_a_broker(monkeypatch):
    monkeypatch.delenv(scaleout.BROKER_ENV, raising=False)
    monkeypatch.delenv(scaleout.BACKEND_ENV, raising=False)
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def(scaleout.JOB_NAME)
    assert job.executor_def.name == "celery"
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == set(
        REGION_ASSET_NAMES
    )
    assert job.partitions_def == dg.DynamicPartitionsDefinition(name="regions")


def test_deploy_files_match_the_code():
    worker_yaml = yaml.safe_load((DEPLOY_CELERY / "celery.yaml").read_text())
    assert worker_yaml["execution"]["config"]["config_source"] == scaleout.CELERY_SETTINGS

    job = defs.resolve_job_def(scaleout.JOB_NAME)
    run_config = yaml.safe_load((DEPLOY_CELERY / "run_config_regions.yaml").read_text())
    validation = dg.validate_run_config(job, run_config)
    assert validation["ops"]["raw_nmm"]["config"]["n_segments"] == 20
    # Dagster's own validation of the instance's dagster.yaml (the PostgreSQL stack itself: tests/deploy).
    from dagster._core.instance.config import dagster_instance_config

    instance_config, _ = dagster_instance_config(str(DEPLOY_CELERY))
    assert set(instance_config["storage"]) == {"postgres"}
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance_config["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_run_retries_rerun_a_celery_step_failure_but_not_an_in_process_one(tmp_path):
    """With the deployment's run retries (crashes only), a step failure of a Celery run is retried: it may be the
    worker's or the broker's doing. The same failure of an in-process region run is not."""
    from dagster._core.events import JobFailureData, RunFailureReason
    from dagster._core.storage.tags import WILL_RETRY_TAG

    instance_yaml = yaml.safe_load((DEPLOY_CELERY / "dagster.yaml").read_text())
    will_retry = {}
    with dg.instance_for_test(overrides={"run_retries": instance_yaml["run_retries"]}) as instance:
        for job_name in (scaleout.JOB_NAME, "deepsif_region_job"):
            job = defs.resolve_job_def(job_name)
            run = instance.create_run_for_job(job, tags=job.tags)
            instance.report_run_failed(
                run, "Steps failed: ['raw_nmm'].", JobFailureData(None, RunFailureReason.STEP_FAILURE)
            )
            will_retry[job_name] = instance.get_run_by_id(run.run_id).tags[WILL_RETRY_TAG]
    assert will_retry == {scaleout.JOB_NAME: "true", "deepsif_region_job": "false"}


def test_kubernetes_files_agree_with_each_other_and_the_code():
    """Not a cluster test (none here): the Helm values, the PVC and the image refer to the same things."""
    deploy = PROJECT_ROOT / "deploy"
    values = yaml.safe_load((deploy / "k8s" / "values.yaml").read_text())
    claim = yaml.safe_load((deploy / "k8s" / "shared-data-pvc.yaml").read_text())["metadata"]["name"]
    (code,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert code["dagsterApiGrpcArgs"] == ["--module-name", "neuro_pipelines.definitions"]
    for pod in (code, launcher):
        assert [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]] == [claim]
        assert [m["mountPath"] for m in pod["volumeMounts"]] == ["/data"]
    assert values["dagsterDaemon"]["runRetries"]["retryOnAssetOrOpFailure"] is False

    # The image must hold every package the project declares plus the folders the code reads at run time.
    import tomllib

    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (deploy / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert packages | {"matlab", "data"} <= copied
    assert "octave-signal" in dockerfile


def test_unreachable_broker_fails_the_run_clearly_and_writes_nothing(tmp_path, monkeypatch):
    from tests.support.celery_harness import free_port

    monkeypatch.setenv(scaleout.BROKER_ENV, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    from neuro_pipelines.instance import ensure_instance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # the run worker opens the same instance
    ensure_instance()
    source_dir = tmp_path / "source"
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("regions", ["0"])
        started = time.monotonic()
        (outcome,) = run_jobs(
            instance,
            [
                RunSpec(
                    scaleout.JOB_NAME,
                    "region 0",
                    {"resources": {"deepsif_paths": {"config": {"source_dir": str(source_dir)}}}},
                    partition_key="0",
                )
            ],
            launched_by="test",
            log_dir=tmp_path / "logs",
        )
        elapsed = time.monotonic() - started
        records = instance.get_records_for_run(outcome.run_id).records
    assert not outcome.success
    assert elapsed < 90, f"gave up only after {elapsed:.0f} s"
    events = [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]
    assert any("Encountered error during celery task submission" in (e.message or "") for e in events)
    errors = [e.engine_event_data.error.to_string() for e in events if e.is_engine_event and e.engine_event_data.error]
    assert any("Connection refused" in error for error in errors), errors
    assert not source_dir.exists()


# ---- the real thing ----------------------------------------------------------------------------------------------
def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key → the Celery worker that ran it, from the engine event each worker writes when it starts a step."""
    workers = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.engine_event_data.metadata
        if record.step_key and "Celery worker" in metadata:
            workers[record.step_key] = metadata["Celery worker"].value
    return workers


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("octave-cli") is None, reason="GNU Octave (octave-cli) is not installed")
@pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="redis-server is not installed")
def test_region_partitions_run_on_celery_workers_and_match_in_process(tmp_path, monkeypatch):
    started = time.monotonic()
    reference_dir = tmp_path / "source-in-process"
    run_regions_in_process(reference_dir, REGIONS, SHORT_CONFIG)

    from neuro_pipelines.instance import ensure_instance

    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_instance(home)  # the project's dagster.yaml: run queue, pools tvb/octave limited to the cores
    celery_dir = tmp_path / "source-celery"
    logs = tmp_path / "logs"
    logs.mkdir()
    run_config = {
        # No broker here: the run takes it from $DAGSTER_CELERY_BROKER_URL (the deployment's default path).
        "execution": {"config": {}},
        "ops": SHORT_CONFIG,
        "resources": {"deepsif_paths": {"config": {"source_dir": str(celery_dir)}}},
    }
    with running_redis(tmp_path / "redis") as broker_url:
        with running_celery_workers(WORKERS, home, broker_url, logs) as workers:
            for name, value in worker_env(home, broker_url).items():  # what the run workers inherit
                monkeypatch.setenv(name, value)
            with dg.DagsterInstance.from_config(str(home)) as instance:
                instance.add_dynamic_partitions("regions", REGIONS)
                outcomes = run_jobs(
                    instance,
                    [RunSpec(scaleout.JOB_NAME, f"region {r}", run_config, partition_key=r) for r in REGIONS],
                    launched_by="test",
                    log_dir=logs,
                    workers=len(REGIONS),
                )
        for outcome in outcomes:
            assert outcome.success, f"run of {outcome.spec.label} failed: {outcome.error}"

    hostnames = {worker.hostname for worker in workers}
    used = set()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for outcome in outcomes:
            ran_on = step_workers(instance, outcome.run_id)
            assert set(ran_on) == set(REGION_ASSET_NAMES), f"{outcome.spec.label}: {ran_on}"
            assert set(ran_on.values()) <= hostnames
            used |= set(ran_on.values())
        for asset in REGION_ASSET_NAMES:
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(REGIONS)
    # Concurrent runs and one task per worker at a time (late ack, prefetch 1): both workers must have worked.
    assert used == hostnames
    # The workers' own logs agree: six step tasks received and succeeded between them.
    worker_logs = "".join(worker.log_path.read_text() for worker in workers)
    assert worker_logs.count("Task execute_plan[") >= 2 * len(REGIONS)
    assert worker_logs.count("] succeeded in ") == 2 * len(REGIONS)

    reference, distributed = mat_tree(reference_dir), mat_tree(celery_dir)
    assert sorted(distributed) == sorted(reference)
    assert any("/a1/nmm_" in name for name in reference), "expected clips for region 1 with this config"
    for name, variables in reference.items():
        assert sorted(distributed[name]) == sorted(variables), name
        for variable, value in variables.items():
            np.testing.assert_array_equal(distributed[name][variable], value, err_msg=f"{name}:{variable}")
    assert not (celery_dir / "raw_nmm" / "a0").exists()  # cleaned up on the worker as in-process
    print(f"celery scale-out test: {time.monotonic() - started:.1f} s")
