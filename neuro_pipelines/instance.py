"""The project's persistent Dagster instance: created safely, sized for the machine, kept free of dead runs.

Every entry point (the CLIs, ``scripts/setup.sh``/``ui.sh``, the demo) calls :func:`ensure_instance`. It creates
``$DAGSTER_HOME`` (default: the project-local ``.dagster_home``) with a ``dagster.yaml`` and the pool limits, under
a lock so that several commands started at once on an empty home do not race on the database schema, and then
reaps dead runs: a run whose worker process died (``kill -9``, OOM, reboot) stays STARTED and keeps its pool slots
forever, silently blocking every later run of the same pool. Runs launched by this project record their worker
process in the tag :data:`WORKER_TAG`; a run whose worker is gone is marked failed and its slots are released.
The ``run_hygiene_sensor`` (``neuro_pipelines.definitions``) does the same while ``dagster dev`` or the daemon runs.

Run as ``python -m neuro_pipelines.instance [DAGSTER_HOME]``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuro_core.files import write_text_atomic
from neuro_core.locks import exclusive_lock
from neuro_core.project import PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
POOLS = ("tvb", "octave")
WORKER_TAG = "neuro/worker"
CELERY_TAG = "neuro/scale-out"
_SETUP_LOCK = ".instance-setup.lock"
logger = logging.getLogger(__name__)


def dagster_home() -> Path:
    """The instance folder: ``$DAGSTER_HOME`` if set, else the project-local ``.dagster_home``.

    Sets ``DAGSTER_HOME`` for this process (and its children) so that Dagster itself agrees.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).absolute()
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def default_dagster_yaml(n_cpus: int) -> str:
    """The ``dagster.yaml`` written on first use, sized for a machine with ``n_cpus`` cores."""
    return f"""\
# Project-local Dagster instance for neuro-pipelines; created on first use (scripts/setup.sh or any CLI).
# Edit freely (restart `dagster dev` afterwards); delete this file to get the defaults back.
# Per-pool limits live in the instance database: `dagster instance concurrency set tvb N`.

concurrency:
  # Queue: at most one run per core; a simulation or an Octave extraction keeps one core busy.
  runs:
    max_concurrent_runs: {n_cpus}
  pools:
    # Any pool without its own limit (set below for `tvb` and `octave`) gets this many slots.
    default_limit: {n_cpus}

# Retry runs whose process crashed (OOM kill, lost worker); a failing asset is a real failure, not retried.
run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false

# The daemon fails runs stuck while starting and frees the pool slots of runs that ended without doing so
# (a run marked failed from outside). Dead in-process workers are found by the run_hygiene_sensor.
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
  free_slots_after_run_end_seconds: 60

telemetry:
  enabled: false
"""


def ensure_instance(home: Path | None = None) -> Path:
    """Create ``home`` (dagster.yaml, database, pool limits) unless present, then reap dead runs; return it."""
    if home is not None:
        os.environ["DAGSTER_HOME"] = str(Path(home).absolute())
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    import dagster as dg

    with exclusive_lock(home / _SETUP_LOCK, "setting up the Dagster instance", wait=True, timeout_s=300):
        config = home / "dagster.yaml"
        n_cpus = os.cpu_count() or 1
        if not config.exists():
            write_text_atomic(config, default_dagster_yaml(n_cpus))
        with dg.DagsterInstance.get() as instance:  # creates or migrates the storage
            storage = instance.event_log_storage
            configured = set(storage.get_concurrency_keys())
            for pool in POOLS:
                if pool not in configured:
                    storage.set_concurrency_slots(pool, n_cpus)
            reap_dead_runs(instance)
    return home


# ---- worker processes of runs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerProcess:
    """A process on a host, identified across pid reuse and reboots."""

    host: str
    boot_id: str
    pid: int
    start_ticks: int

    def encode(self) -> str:
        return f"{self.host}|{self.boot_id}|{self.pid}|{self.start_ticks}"

    @classmethod
    def decode(cls, text: str) -> WorkerProcess | None:
        try:
            host, boot_id, pid, ticks = text.split("|")
            return cls(host, boot_id, int(pid), int(ticks))
        except ValueError:
            return None

    @classmethod
    def of(cls, pid: int) -> WorkerProcess:
        return cls(socket.gethostname(), _boot_id(), pid, _start_ticks(pid) or 0)

    def is_alive(self) -> bool | None:
        """True/False for a process of this host; None when it runs elsewhere (cannot be checked here)."""
        if self.host != socket.gethostname():
            return None
        if self.boot_id != _boot_id():
            return False  # the machine rebooted since
        ticks = _start_ticks(self.pid)
        return ticks is not None and ticks == self.start_ticks


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` since boot (clock ticks), or None if no such process (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def record_worker(instance: Any, run_id: str, pid: int | None = None) -> None:
    """Tag run ``run_id`` with the process that executes it (default: this one)."""
    instance.add_run_tags(run_id, {WORKER_TAG: WorkerProcess.of(pid or os.getpid()).encode()})


def claim_run(context: Any) -> None:
    """Record this process as the run's worker (first step of a run started by the UI, a sensor or a backfill).

    Runs started by the CLIs are tagged by their launcher already. Celery runs are skipped: their steps run in
    worker processes that are not the run's orchestrator (worker loss is Celery's to report). Any step refuses to
    start when its run has already ended (see :func:`refuse_step_of_ended_run`).
    """
    refuse_step_of_ended_run(context)
    tags = context.run.tags
    if WORKER_TAG not in tags and CELERY_TAG not in tags:
        record_worker(context.instance, context.run_id)


class StepOfEndedRunError(RuntimeError):
    """A step was delivered after its run had ended; it must not touch the run's files."""


def refuse_step_of_ended_run(context: Any) -> None:
    """Fail at once, before any lock or file is touched, when the step's run has already ended.

    A persistent broker can deliver a Celery step after its run failed (the run's executor lost the broker during
    a restart, the queued step survived it); running it would race the run's retry for the same region. Steps of
    a live run (any executor) pass: their run is STARTED.
    """
    import dagster as dg

    run = context.instance.get_run_by_id(context.run_id)
    ended = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED,
             dg.DagsterRunStatus.CANCELING}
    if run is not None and run.status in ended:
        raise StepOfEndedRunError(
            f"run {context.run_id} already ended ({run.status.value}) before this step was delivered (a queued "
            "step that outlived its run, e.g. across a broker restart); not executed, the run's retry does it"
        )


def reap_dead_runs(instance: Any) -> list[str]:
    """Mark failed every unfinished run whose recorded worker process on this host is gone; free its slots."""
    import dagster as dg

    unfinished = [
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=unfinished)):
        worker = WorkerProcess.decode(run.tags.get(WORKER_TAG, ""))
        if worker is None or worker.is_alive() is not False:
            continue
        instance.report_run_failed(
            run,
            f"the run's worker process (pid {worker.pid} on {worker.host}) is gone: killed, out of memory or "
            "the machine restarted; marked failed and its pool slots released",
        )
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
        logger.warning("run %s of %s: worker pid %s is gone, marked failed", run.run_id, run.job_name, worker.pid)
    return reaped


if __name__ == "__main__":
    ensure_instance(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
