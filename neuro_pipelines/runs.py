"""Run the code location's named jobs from the command line, and follow them.

The CLIs never execute assets themselves. For each unit of work they create a run of a named job of the one
``Definitions`` object (``neuro_pipelines.definitions``) in the instance, execute it in its own worker process
(``dagster api execute_run``, the entry point Dagster's own run launcher uses), and follow it through the
instance's event log. Every way of starting work (UI, sensors, backfills, CLIs) therefore leaves the same record:
runs under their job's name with partition and tags, the same pools, the same checks and metadata. A worker
executes one run at a time, so a crash (``kill -9``, OOM) loses only that run (the runs queued for it are marked
failed), and :mod:`neuro_pipelines.instance` releases what it held the next time anything starts. A command keeps
its workers for all its runs: a worker costs ≈ 3 CPU-s to start (Python, imports, the instance connection).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from neuro_pipelines.instance import reap_dead_runs, record_worker

DEFINITIONS_MODULE = "neuro_pipelines.definitions"
DEFINITIONS_ATTRIBUTE = "defs"
LAUNCHED_BY_TAG = "neuro/launched-by"
# how often the event logs of runs in progress are read for their progress lines; a run's end is noticed at once
# (its worker says so)
PROGRESS_SECONDS = 2.0
_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
# the events that end a run (each status change is an event; the run's record is updated right after it)
_RUN_ENDING_EVENTS = {
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
}


@dataclass(frozen=True)
class RunSpec:
    """One run to start: a named job, its run config and tags, for one partition (or none)."""

    job_name: str
    label: str  # how progress lines name it, e.g. "region 3"
    run_config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    partition_key: str | None = None
    partition_range: tuple[str, str] | None = None  # first and last key of a multi-partition run
    asset_selection: tuple[str, ...] | None = None  # a subset of the job's assets (default: all)


@dataclass
class RunOutcome:
    """What became of one run."""

    spec: RunSpec
    run_id: str
    success: bool
    status: str
    seconds: float
    error: str | None = None
    materializations: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset → metadata values


def _reconstructable_job(job_name: str) -> Any:
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repository = ReconstructableRepository.for_module(
        DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, working_directory=os.getcwd()
    )
    return repository.get_reconstructable_job(job_name)


def create_run(instance: dg.DagsterInstance, spec: RunSpec, launched_by: str) -> dg.DagsterRun:
    """A NOT_STARTED run of ``spec.job_name`` in ``instance`` (validated: config, partition)."""
    recon_job = _reconstructable_job(spec.job_name)
    selection = None
    if spec.asset_selection is not None:
        selection = frozenset(dg.AssetKey(name) for name in spec.asset_selection)
        recon_job = recon_job.get_subset(asset_selection=selection)
    job_def = recon_job.get_definition()
    tags = {**job_def.run_tags, LAUNCHED_BY_TAG: launched_by, **spec.tags}  # as Dagster's own launchers do
    if spec.partition_key is not None:
        from dagster._core.definitions.partitions.context import partition_loading_context

        with partition_loading_context(dynamic_partitions_store=instance):
            tags.update(job_def.get_tags_for_partition_key(spec.partition_key, selected_asset_keys=selection))
    if spec.partition_range is not None:
        from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

        tags.update({ASSET_PARTITION_RANGE_START_TAG: spec.partition_range[0],
                     ASSET_PARTITION_RANGE_END_TAG: spec.partition_range[1]})
    return instance.create_run_for_job(
        job_def=job_def,
        run_config=dict(spec.run_config),
        tags=tags,
        asset_selection=selection,
        job_code_origin=recon_job.get_python_origin(),
    )


def start_worker(log_dir: Path, name: str) -> tuple[subprocess.Popen, int]:
    """A new worker process (``neuro_pipelines.run_worker``) that executes the run ids written to its standard
    input, one per line, in turn, and exits when that input closes (also when this process dies); and the read end
    of the pipe on which it writes each run's id once the run ended (end of file: it exited).

    The process' own console output (Dagster's, Octave's) goes to ``<log_dir>/<name>.log``; the runs' events and
    logs are in the instance.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    ended_read, ended_write = os.pipe()
    try:
        with open(log_dir / f"{name}.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "neuro_pipelines.run_worker", str(ended_write)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE,
                text=True,
                pass_fds=(ended_write,),
            )
    except BaseException:
        os.close(ended_read)
        raise
    finally:
        os.close(ended_write)  # the worker's copy only: end of file once it exits
    return process, ended_read


@dataclass
class _Tracked:
    """One run of a worker, followed through the event log."""

    spec: RunSpec
    run_id: str
    cursor: str | None = None
    error: str | None = None  # the first step failure seen in the event log
    started: float | None = None
    ending_seen: bool = False  # the event log holds the event that ends the run


@dataclass
class _Worker:
    process: subprocess.Popen
    ended: int | None  # read end of the pipe on which it says a run ended; None once at its end of file
    runs: list[_Tracked]  # given to it and not ended yet, in the order it executes them; empty: idle

    def close_pipe(self) -> None:
        if self.ended is not None:
            os.close(self.ended)
            self.ended = None


def _root_message(error: Any) -> str:
    """The asset's own exception (the cause of Dagster's step wrapper), in a few lines."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = [line.strip() for line in (getattr(error, "message", "") or "").splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("---")]
    return " | ".join(lines[:4])[:600]


def _metadata_values(entries: Mapping[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in entries.items()}


class RunExecutor:
    """Runs started in worker processes and followed through the event log, for a caller that decides what to
    start next (``run_jobs`` is the simple static driver).

    ``on_line(spec, text)`` receives every INFO-or-higher message a run's code logs and each step failure. A worker
    that dies leaves no run behind unfinished: its started run is reaped (failed, slots released) and the runs it
    never started are marked failed. Workers stay for the next runs until :meth:`close`.
    """

    #: how long :meth:`close` waits for an idle worker to exit before it kills it
    CLOSE_TIMEOUT_S = 60.0

    def __init__(
        self,
        instance: dg.DagsterInstance,
        *,
        launched_by: str,
        log_dir: Path,
        on_line: Callable[[RunSpec, str], None] = lambda spec, line: None,
    ) -> None:
        self.instance = instance
        self.launched_by = launched_by
        self.log_dir = log_dir
        self.on_line = on_line
        self._workers: list[_Worker] = []

    @property
    def busy_workers(self) -> int:
        return sum(1 for worker in self._workers if worker.runs)

    def create(self, specs: Sequence[RunSpec]) -> list[_Tracked]:
        """Create the runs of ``specs`` now, to start later: from then on they count as planned (the automation
        sensor does not start the same assets meanwhile). Until a worker starts them this process is their
        worker: if it dies they are reaped."""
        created = []
        for spec in specs:
            run = create_run(self.instance, spec, self.launched_by)
            record_worker(self.instance, run.run_id)
            created.append(_Tracked(spec, run.run_id))
        return created

    def start(self, specs: Sequence[RunSpec] | Sequence[_Tracked]) -> None:
        """Execute runs (created now from specs, or earlier by :meth:`create`) one after the other in one worker
        process: an idle one, or a new one."""
        tracked = [s if isinstance(s, _Tracked) else self.create([s])[0] for s in specs]
        for worker in self._workers:
            if not worker.runs and worker.process.poll() is None and self._give(worker, tracked):
                return
        worker = _Worker(*start_worker(self.log_dir, tracked[0].run_id), [])
        self._workers.append(worker)
        if not self._give(worker, tracked):
            worker.runs.extend(tracked)  # it died at once: poll() fails them with its exit status

    def _give(self, worker: _Worker, tracked: list[_Tracked]) -> bool:
        """Hand ``tracked`` to ``worker``; False if it has died meanwhile (the runs stay this process's)."""
        for item in tracked:  # tagged before the worker can start them: if it dies, they are reaped
            record_worker(self.instance, item.run_id, worker.process.pid)
        try:
            worker.process.stdin.write("".join(f"{item.run_id}\n" for item in tracked))
            worker.process.stdin.flush()
        except BrokenPipeError:
            for item in tracked:
                record_worker(self.instance, item.run_id)
            return False
        worker.runs.extend(tracked)
        return True

    def abandon(self, tracked: Sequence[_Tracked], reason: str) -> None:
        """Fail runs created but never started (the command stops)."""
        for item in tracked:
            run = self.instance.get_run_by_id(item.run_id)
            if run is not None and run.status == dg.DagsterRunStatus.NOT_STARTED:
                self.instance.report_run_failed(run, reason)

    def poll(self) -> list[RunOutcome]:
        """The runs that ended since the last call. Waits until a worker says that a run ended (or exits), at most
        ``PROGRESS_SECONDS``, then follows the event logs of the runs in progress: reading them every 0.5 s was
        most of a command's own CPU time, and a run's end was noticed only at the next read."""
        pipes = [worker.ended for worker in self._workers if worker.ended is not None]
        if pipes:
            ready = select.select(pipes, [], [], PROGRESS_SECONDS)[0]
        else:
            time.sleep(PROGRESS_SECONDS)
            ready = []
        for worker in self._workers:
            if worker.ended in ready and not os.read(worker.ended, 4096):
                worker.close_pipe()  # end of file: it exited, poll() sees it now or next time
        ended = []
        for worker in list(self._workers):
            exited = worker.process.poll() is not None
            for tracked in list(worker.runs):
                outcome = _poll(self.instance, tracked, exited, worker.process.returncode, self.on_line)
                if outcome is None:
                    break  # a worker executes its runs in turn: the ones after this have not started
                worker.runs.remove(tracked)
                ended.append(outcome)
            if exited and not worker.runs:
                worker.close_pipe()
                self._workers.remove(worker)
        return ended

    def close(self) -> None:
        """Close the workers' input: idle ones exit now (waited for, so that their CPU time is this process's
        children's), busy ones after the runs they were given."""
        for worker in self._workers:
            with contextlib.suppress(BrokenPipeError):
                worker.process.stdin.close()
        for worker in self._workers:
            worker.close_pipe()
            if not worker.runs:
                try:
                    worker.process.wait(timeout=self.CLOSE_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait()
        self._workers.clear()


def run_jobs(
    instance: dg.DagsterInstance,
    specs: Sequence[RunSpec],
    *,
    launched_by: str,
    log_dir: Path,
    workers: int = 1,
    runs_per_worker: int = 1,
    on_line: Callable[[RunSpec, str], None] = lambda spec, line: None,
    on_done: Callable[[RunOutcome], None] = lambda outcome: None,
) -> list[RunOutcome]:
    """Create and execute ``specs``: at most ``workers`` worker processes at a time, each executing up to
    ``runs_per_worker`` runs in turn; ``on_done`` receives each outcome as it ends."""
    executor = RunExecutor(instance, launched_by=launched_by, log_dir=log_dir, on_line=on_line)
    pending = list(specs)
    outcomes: list[RunOutcome] = []
    try:
        while pending or executor.busy_workers:
            while pending and executor.busy_workers < workers:
                batch, pending = pending[:runs_per_worker], pending[runs_per_worker:]
                executor.start(batch)
            for outcome in executor.poll():
                outcomes.append(outcome)
                on_done(outcome)
    finally:
        executor.close()
    return outcomes


def _poll(
    instance: dg.DagsterInstance,
    tracked: _Tracked,
    worker_exited: bool,
    returncode: int | None,
    on_line: Callable[[RunSpec, str], None],
) -> RunOutcome | None:
    records = instance.get_records_for_run(tracked.run_id, cursor=tracked.cursor, limit=1000)
    tracked.cursor = records.cursor
    for record in records.records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            if entry.level >= 20 and entry.user_message:
                on_line(tracked.spec, entry.user_message)
        elif event.event_type == dg.DagsterEventType.RUN_START:
            tracked.started = time.monotonic()
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            message = f"{event.step_key}: {_root_message(event.step_failure_data.error)}"
            tracked.error = tracked.error or message
            on_line(tracked.spec, f"✗ {message}")
        elif event.event_type in _RUN_ENDING_EVENTS:
            tracked.ending_seen = True
    if not (tracked.ending_seen or worker_exited):
        # still running: the run's record is read only once it can have ended (reading it at every poll was
        # most of a command's own CPU time during long runs)
        return None
    run = instance.get_run_by_id(tracked.run_id)
    if run.status not in _FINISHED:
        if not worker_exited:
            return None
        # the worker died before it could end this run: fail it and release what it held
        tracked.error = tracked.error or f"the worker process exited (status {returncode}) before the run ended"
        if run.status == dg.DagsterRunStatus.NOT_STARTED:
            instance.report_run_failed(run, tracked.error)
        else:
            reap_dead_runs(instance)
        run = instance.get_run_by_id(tracked.run_id)
    materializations = {}
    for record in instance.get_records_for_run(
        tracked.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.event_log_entry.dagster_event.step_materialization_data.materialization
        materializations[materialization.asset_key.to_user_string()] = _metadata_values(materialization.metadata)
    success = run.status == dg.DagsterRunStatus.SUCCESS
    return RunOutcome(
        spec=tracked.spec,
        run_id=tracked.run_id,
        success=success,
        status=run.status.value,
        seconds=round(time.monotonic() - tracked.started, 2) if tracked.started else 0.0,
        error=None if success else tracked.error or _run_failure_message(instance, tracked.run_id),
        materializations=materializations,
    )


def _run_failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event.event_type_value == "STEP_FAILURE":
            return f"{event.step_key}: {_root_message(event.step_failure_data.error)}"
    return records[-1].event_log_entry.dagster_event.message if records else "run failed"
