"""Fast checks of the deployment's pieces without the whole stack: the PostgreSQL helper cleans up after a failure,
a worker refuses to start on a shared folder without locks, and the files in deploy/ agree with each other and with
what tests/deploy runs (the Helm values and the Dockerfile cannot be run here: no Kubernetes, no Docker engine).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from neuro_core.project import PROJECT_ROOT
from tests.support.celery_harness import free_port, worker_env
from tests.support.postgres import postgres_bin_dir, running_postgres
from tests.support.small_filesystem import small_filesystem

pytestmark = pytest.mark.deploy

DEPLOY = PROJECT_ROOT / "deploy"


def _pg_connect(env: dict[str, str]):
    import psycopg2

    return psycopg2.connect(
        host=env["DAGSTER_PG_HOST"], port=env["DAGSTER_PG_PORT"], user=env["DAGSTER_PG_USERNAME"],
        password=env["DAGSTER_PG_PASSWORD"], dbname=env["DAGSTER_PG_DB"], connect_timeout=5,
    )


@pytest.mark.skipif(postgres_bin_dir() is None, reason="PostgreSQL is not installed (scripts/setup.sh)")
def test_postgres_cluster_is_stopped_and_removed_also_when_the_test_fails():
    with pytest.raises(RuntimeError, match="the test failed"), running_postgres() as env:
        with contextlib.closing(_pg_connect(env)) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            data_dir = Path(cursor.fetchone()[0])
            cursor.execute("SHOW listen_addresses")
            assert cursor.fetchone()[0] == "127.0.0.1"
        postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        assert os.geteuid() != 0 or os.stat(data_dir).st_uid != 0, "the server must not run as root"
        raise RuntimeError("the test failed")
    assert not data_dir.parent.exists()
    assert not Path(f"/proc/{postmaster}").exists()
    import psycopg2

    with pytest.raises(psycopg2.OperationalError):
        _pg_connect(env)


def _start_worker(tmp_path: Path, preflight_dirs: str) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((DEPLOY / "celery" / "dagster.yaml").read_text())
    env = {**worker_env(home, f"redis://127.0.0.1:{free_port()}/0"), "NEURO_PREFLIGHT_DIRS": preflight_dirs}
    return subprocess.run(
        ["bash", str(DEPLOY / "celery" / "start_worker.sh"), "preflight-test", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_worker_refuses_to_start_where_shared_folders_take_no_locks(tmp_path):
    """Checked before Celery starts: exit status 2 and the folder named, not a failure in every later step."""
    missing = tmp_path / "not-mounted"
    done = _start_worker(tmp_path, str(missing))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{missing}: not a folder (not mounted?)" in done.stderr
    assert "celery" not in done.stdout.lower()
    assert not missing.exists(), "the check must not create a folder where a mount is missing"

    good = tmp_path / "shared"
    good.mkdir()
    with small_filesystem(tmp_path / "read-only", 1 << 20, read_only=True) as read_only:
        done = _start_worker(tmp_path, f"{good}:{read_only}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(read_only) in done.stderr and "Read-only file system" in done.stderr
    assert str(good) + ":" not in done.stderr
    assert "flock" in done.stderr  # what the folder needs (deploy/README.md lists supported file systems)
    assert list((good / ".locks").iterdir()) == [], "the check leaves no files behind"


def test_deploy_files_agree_with_each_other_and_with_what_the_tests_run():
    instance = yaml.safe_load((DEPLOY / "celery" / "dagster.yaml").read_text())
    db = instance["storage"]["postgres"]["postgres_db"]
    # Everything from the environment, the port included (env.sh defaults it to PostgreSQL's 5432).
    assert {key: value for key, value in db.items() if key != "scheme"} == {
        key: {"env": f"DAGSTER_PG_{name}"}
        for key, name in (("username", "USERNAME"), ("password", "PASSWORD"), ("hostname", "HOST"),
                          ("db_name", "DB"), ("port", "PORT"))
    }
    assert 'DAGSTER_PG_PORT="${DAGSTER_PG_PORT:-5432}"' in (DEPLOY / "celery" / "env.sh").read_text()
    # SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql:// URL; dagster-postgres brings psycopg2.
    assert db["scheme"] == "postgresql+psycopg2"
    for block in ("local_artifact_storage", "compute_logs"):
        assert instance[block]["config"]["base_dir"] == {"env": "DAGSTER_SHARED_STORAGE_DIR"}

    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert daemon["runRetries"]["enabled"] is instance["run_retries"]["enabled"] is True
    assert daemon["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert daemon["runRetries"]["retryOnAssetOrOpFailure"] is instance["run_retries"]["retry_on_asset_or_op_failure"]
    assert daemon["runMonitoring"]["enabled"] is instance["run_monitoring"]["enabled"] is True
    assert values["postgresql"]["service"]["port"] == 5432
    assert values["postgresql"]["postgresqlScheme"] == db["scheme"]

    # The image installs what scripts/setup.sh installs for the tests: the project with its `deploy` extra.
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    deploy_extra = pyproject["project"]["optional-dependencies"]["deploy"]
    assert any(req.startswith("dagster-postgres") for req in deploy_extra)
    assert any(req.startswith("dagster-celery[redis]") for req in pyproject["project"]["dependencies"])
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'pip install ".[deploy]"' in dockerfile
    setup = (PROJECT_ROOT / "scripts" / "setup.sh").read_text()
    assert '-e ".[test,deploy]"' in setup
    apt_line = next(line for line in setup.splitlines() if line.startswith("APT_PACKAGES="))
    assert "postgresql" in shlex.split(apt_line.split("(", 1)[1].rstrip(")"))
    assert "--no-install-recommends" in setup

    # Every start script goes through env.sh (environment + pre-flight check) and uses the tested files.
    for script in ("start_worker.sh", "start_daemon.sh", "start_webserver.sh"):
        assert 'source "$(dirname "${BASH_SOURCE[0]}")/env.sh"' in (DEPLOY / "celery" / script).read_text()
    assert "deploy/celery/celery.yaml" in (DEPLOY / "celery" / "start_worker.sh").read_text()
    assert "workspace.yaml" in (DEPLOY / "celery" / "start_daemon.sh").read_text()


def test_a_celery_step_delivered_after_its_run_ended_refuses_to_start(tmp_path):
    """What a Celery worker does with a step message (dagster_celery.tasks: plan for the one step, then
    execute_plan_iterator), for a run that has already failed: the step fails before any lock or file."""
    import dagster as dg
    from dagster._core.execution.api import create_execution_plan, execute_plan_iterator

    from deepsif_assets.scaleout import JOB_NAME
    from neuro_pipelines.runs import RunSpec, _reconstructable_job, create_run

    source_dir = tmp_path / "source"
    run_config = {
        "execution": {"config": {"broker": "redis://127.0.0.1:1/0"}},  # never contacted: no executor runs here
        "resources": {"deepsif_paths": {"config": {"source_dir": str(source_dir)}}},
        # Small, in case the step did run: the test then fails in seconds, not after a full simulation.
        "ops": {"raw_nmm": {"config": {"segment_ms": 1000.0, "n_segments": 1, "iterations": [0]}}},
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("regions", ["3"])
        run = create_run(instance, RunSpec(JOB_NAME, "region 3", run_config, partition_key="3"), "test")
        instance.report_run_failed(run, "its run process lost the broker")
        recon_job = _reconstructable_job(JOB_NAME)
        plan = create_execution_plan(recon_job, run.run_config, step_keys_to_execute=["raw_nmm"])
        run = instance.get_run_by_id(run.run_id)
        events = list(execute_plan_iterator(plan, recon_job, run, instance, run_config=run.run_config))
    failures = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1
    assert "StepOfEndedRunError" in failures[0].step_failure_data.error.to_string()
    assert "already ended (FAILURE)" in failures[0].step_failure_data.error.to_string()
    assert not source_dir.exists(), "nothing may be written, not even the region lock"
