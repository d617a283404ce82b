"""The production shape of the Celery deployment on one host, started for real by the tests of this folder.

PostgreSQL (a throw-away cluster), Redis (append-only file, as a broker that keeps queued tasks across a
restart), ``dagster-daemon`` and ``dagster-webserver`` (``deploy/celery/start_daemon.sh``/``start_webserver.sh``
on the repository's ``workspace.yaml``) and two Celery workers (``deploy/celery/start_worker.sh``). Every process
plays a machine of its own: its own DAGSTER_HOME (a copy of ``deploy/celery/dagster.yaml``), HOME, TMPDIR and
working directory. They share only PostgreSQL, Redis and ``shared/`` (the data folder: DeepSIF source, ephys
data and results, step logs), as machines on a network with one NFS export would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from neuro_core.project import PROJECT_ROOT
from tests.support.celery_harness import (
    REDIS_SERVER,
    CeleryWorker,
    RedisServer,
    free_port,
    redis_server,
    running_service,
    start_celery_worker,
    stop_process_group,
    wait_until_answering,
)
from tests.support.postgres import postgres_bin_dir, running_postgres

DEPLOY_CELERY = PROJECT_ROOT / "deploy" / "celery"
LOCATION = "neuro_pipelines"
REPOSITORY = "__repository__"
WORKERS = ("deepsif-a", "deepsif-b")
TVB_SLOTS = len(WORKERS)  # pools tvb and octave: one slot per worker, as deploy/README.md advises
LOST_AFTER_S = 20
# Sensors the tests do not exercise, switched off like an operator would (UI → Automation): the automation
# sensor would launch the synthetic source over the default source folder after the first region.
SENSORS_OFF = ("automation_sensor",)


def _skip_reason() -> str | None:
    if postgres_bin_dir() is None:
        return "PostgreSQL is not installed (Debian package `postgresql`, scripts/setup.sh)"
    if not Path(REDIS_SERVER).exists():
        return "redis-server is not installed"
    if shutil.which("octave-cli") is None:
        return "GNU Octave (octave-cli) is not installed"
    try:
        import dagster_postgres  # noqa: F401
    except ImportError:
        return "dagster-postgres is not installed (the `deploy` extra, scripts/setup.sh)"
    return None


class DeployStack:
    """The running deployment: handles on its processes and the ways a user talks to it."""

    def __init__(self, root: Path, pg_env: Mapping[str, str], redis: RedisServer) -> None:
        self.root = root
        self.pg_env = dict(pg_env)
        self.redis = redis
        self.shared = root / "shared"
        self.source_dir = self.shared / "deepsif" / "source"
        self.storage_dir = self.shared / "dagster-storage"
        self.var_dir = self.shared / "var"  # NEURO_PIPELINES_VAR_DIR: default ephys data and results roots
        self.ephys_data = self.var_dir / "ephys" / "data"
        self.ephys_results = self.var_dir / "ephys" / "results"
        self.logs = root / "logs"
        for folder in (self.source_dir, self.storage_dir, self.ephys_data, self.ephys_results, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.webserver_port = free_port()
        self.workers: dict[str, CeleryWorker] = {}
        self.pool_slots = TVB_SLOTS
        self.services: dict[str, subprocess.Popen] = {}  # daemon, webserver

    # ---- machines ------------------------------------------------------------------------------------------
    @property
    def common_env(self) -> dict[str, str]:
        """What every machine of the deployment is configured with (deploy/README.md)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PYTEST_"))}
        env.update(self.pg_env)
        env.update(
            DAGSTER_CELERY_BROKER_URL=self.redis.url,
            DAGSTER_CELERY_BACKEND_URL=self.redis.url,
            DAGSTER_SHARED_STORAGE_DIR=str(self.storage_dir),
            NEURO_PIPELINES_VAR_DIR=str(self.var_dir),
            NEURO_PIPELINES_VENV=sys.prefix,  # the worktree under test may have no .venv of its own
            NEURO_PREFLIGHT_DIRS=f"{self.source_dir}:{self.storage_dir}",
            # The daemon's lost-worker sensor: 20 s of silence instead of the production 120 s keeps the test short.
            NEURO_CELERY_WORKER_LOST_AFTER_S=str(LOST_AFTER_S),
        )
        return env

    def machine(self, name: str) -> tuple[dict[str, str], Path]:
        """Environment and working directory of the machine ``name``: DAGSTER_HOME, HOME, TMPDIR of its own."""
        base = self.root / "machines" / name
        home, tmp, work, dagster_home = (base / p for p in ("home", "tmp", "work", "dagster_home"))
        for folder in (home, tmp, work, dagster_home):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEPLOY_CELERY / "dagster.yaml", dagster_home / "dagster.yaml")
        env = {**self.common_env, "HOME": str(home), "TMPDIR": str(tmp), "DAGSTER_HOME": str(dagster_home)}
        return env, work

    @contextlib.contextmanager
    def instance(self, machine: str = "test-client") -> Iterator[Any]:
        """A ``DagsterInstance`` of this process on the shared PostgreSQL, as any machine would open it."""
        import dagster as dg

        env, _ = self.machine(machine)
        variables = {k: env[k] for k in (*self.pg_env, "DAGSTER_SHARED_STORAGE_DIR")}
        with mock.patch.dict(os.environ, variables), dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            yield instance

    def setup_instance(self) -> None:
        """``deploy/celery/setup_instance.sh``: schema and pool limits, once before anything else starts
        (processes starting together would otherwise race to create the same tables)."""
        env, work = self.machine("setup")
        done = subprocess.run(
            ["bash", str(DEPLOY_CELERY / "setup_instance.sh"), str(self.pool_slots), str(self.pool_slots)],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    # ---- workers -------------------------------------------------------------------------------------------
    def start_worker(self, name: str) -> CeleryWorker:
        env, work = self.machine(name)
        worker = start_celery_worker(name, env, self.logs / f"worker-{name}.log", cwd=work)
        self.workers[name] = worker
        wait_until_answering(self.redis.url, [worker], timeout_s=120)
        return worker

    def stop_worker(self, name: str) -> None:
        worker = self.workers.pop(name, None)
        if worker is not None:
            stop_process_group(worker.process)

    # ---- GraphQL (the webserver) ---------------------------------------------------------------------------
    @property
    def graphql(self) -> Any:
        from dagster_graphql import DagsterGraphQLClient

        return DagsterGraphQLClient("127.0.0.1", port_number=self.webserver_port, timeout=60)

    def submit(self, job_name: str, run_config: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        """Queue a run the way the Launchpad or a script does (GraphQL ``launchPipelineExecution``)."""
        return self.graphql.submit_job_execution(
            job_name,
            repository_location_name=LOCATION,
            repository_name=REPOSITORY,
            run_config=dict(run_config),
            tags=dict(tags),
        )

    def query(self, text: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.graphql._execute(text, dict(variables or {}))

    def stop_sensor(self, name: str) -> None:
        """Switch a sensor off as the UI's toggle does (GraphQL ``stopSensor``)."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}
        state = self.query(
            "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {"
            " ... on Sensor { sensorState { id selectorId } } } }",
            {"s": selector},
        )["sensorOrError"]["sensorState"]
        stopped = self.query(
            "mutation($id: String, $sel: String) { stopSensor(id: $id, jobSelectorId: $sel) {"
            " __typename ... on StopSensorMutationResult { instigationState { status } }"
            " ... on PythonError { message } } }",
            {"id": state["id"], "sel": state["selectorId"]},
        )["stopSensor"]
        assert stopped.get("instigationState", {}).get("status") == "STOPPED", stopped

    # ---- runs ----------------------------------------------------------------------------------------------
    def wait_for_runs(self, run_ids: Sequence[str], timeout_s: float) -> dict[str, Any]:
        """Wait until every run has ended; return run id → DagsterRun. Fails the test on timeout."""
        import dagster as dg

        finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
        deadline = time.monotonic() + timeout_s
        with self.instance() as instance:
            while True:
                runs = {run_id: instance.get_run_by_id(run_id) for run_id in run_ids}
                if all(run.status in finished for run in runs.values()):
                    return runs
                if time.monotonic() > deadline:
                    states = {run_id: run.status.value for run_id, run in runs.items()}
                    pytest.fail(f"runs not finished after {timeout_s} s: {states}\n{self.log_tails()}")
                self.check_alive()
                time.sleep(1)

    # ---- health --------------------------------------------------------------------------------------------
    def check_alive(self) -> None:
        for name, service in self.services.items():
            if service.poll() is not None:
                pytest.fail(f"{name} exited (status {service.returncode}):\n{self.log_tails()}")

    def log_tails(self, chars: int = 2500) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(self.logs.glob("*.log")))


def _wait_for_webserver(stack: DeployStack, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{stack.webserver_port}/server_info"
    while True:
        stack.check_alive()
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                break
        if time.monotonic() > deadline:
            pytest.fail(f"webserver not up after {timeout_s} s:\n{stack.log_tails()}")
        time.sleep(0.5)
    # The code location loads in its own server process after the webserver answers: wait for it.
    while True:
        with contextlib.suppress(Exception):
            status = stack.query(
                "query { workspaceOrError { ... on Workspace { locationEntries {"
                " name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"
            )
            (entry,) = status["workspaceOrError"]["locationEntries"]
            if entry["loadStatus"] == "LOADED":
                error = entry["locationOrLoadError"]
                assert error["__typename"] == "RepositoryLocation", error
                return
        if time.monotonic() > deadline:
            pytest.fail(f"code location not loaded after {timeout_s} s:\n{stack.log_tails()}")
        time.sleep(0.5)


def _wait_for_daemon(stack: DeployStack, timeout_s: float) -> None:
    """Until the daemons the deployment relies on report healthy heartbeats in PostgreSQL."""
    # Run retries are handled by the event-log consumer daemon in Dagster 1.13.
    wanted = {"SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING", "EVENT_LOG_CONSUMER"}
    deadline = time.monotonic() + timeout_s
    while True:
        stack.check_alive()
        with contextlib.suppress(Exception):
            status = stack.query("query { instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }")
            healthy = {
                d["daemonType"] for d in status["instance"]["daemonHealth"]["allDaemonStatuses"] if d["healthy"]
            }
            if wanted <= healthy:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"daemon not healthy after {timeout_s} s:\n{stack.log_tails()}")
        time.sleep(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployStack]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("deploy")
    started = time.monotonic()
    # A CI time-out sends SIGTERM: unwind like Ctrl-C so that every server below is still stopped.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with running_postgres() as pg_env, redis_server(root / "redis", persistent=True) as redis:
            stack = DeployStack(root, pg_env, redis)
            yield from _run_services(stack, started)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _run_services(stack: DeployStack, started: float) -> Iterator[DeployStack]:
    stack.setup_instance()
    with contextlib.ExitStack() as services:
        for name, command in (
            ("daemon", ["bash", str(DEPLOY_CELERY / "start_daemon.sh")]),
            (
                "webserver",
                ["bash", str(DEPLOY_CELERY / "start_webserver.sh"), "127.0.0.1", str(stack.webserver_port)],
            ),
        ):
            env, work = stack.machine(name)
            stack.services[name] = services.enter_context(
                running_service(command, env, work, stack.logs / f"{name}.log")
            )
        try:
            for name in WORKERS:
                stack.start_worker(name)
            _wait_for_webserver(stack, timeout_s=180)
            for name in SENSORS_OFF:
                stack.stop_sensor(name)
            _wait_for_daemon(stack, timeout_s=180)
            print(f"deployment up in {time.monotonic() - started:.1f} s on {socket.gethostname()}")
            yield stack
        finally:
            for name in list(stack.workers):
                stack.stop_worker(name)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
