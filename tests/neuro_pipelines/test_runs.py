"""``neuro_pipelines.runs``: how a command follows the runs its workers execute."""

import os
import signal
import time
from collections import Counter
from pathlib import Path

import dagster as dg

from ephys_assets import sample_data as sd
from ephys_assets.cli import main
from neuro_pipelines import runs
from neuro_pipelines.instance import WORKER_TAG, WorkerProcess


def test_a_run_is_followed_through_its_events_and_its_end_is_noticed_at_once(tmp_path, monkeypatch):
    """A command reads a run's record only once an event says it ended, and learns of the end from the worker at
    once: with the event logs read for progress only every 60 s, it still ends as soon as its runs do."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(runs, "PROGRESS_SECONDS", 60.0)
    polls, reads_while_polling, polling = [], [], []
    poll, get_run_by_id = runs.RunExecutor.poll, dg.DagsterInstance.get_run_by_id

    def counted_poll(self):
        polls.append(1)
        polling.append(1)
        try:
            return poll(self)
        finally:
            polling.pop()

    def counted_read(self, run_id):
        if polling:
            reads_while_polling.append(run_id)
        return get_run_by_id(self, run_id)

    monkeypatch.setattr(runs.RunExecutor, "poll", counted_poll)
    monkeypatch.setattr(dg.DagsterInstance, "get_run_by_id", counted_read)
    data, results = tmp_path / "data", tmp_path / "results"
    sd.write_openephys_session(data, "oe_poll", {1: (0.05, 0.05)})
    started = time.monotonic()
    assert main(["--input", "openephys", "--data-dir", str(data), "--results-dir", str(results)]) == 0
    assert time.monotonic() - started < 45  # no 60-s wait
    assert len(list(results.glob("job_*.json"))) == 2  # the runs did their work
    with dg.DagsterInstance.get() as instance:
        run_ids = {run.run_id for run in instance.get_runs()}
    # each run's record was read once when it ended (twice if the record trailed the ending event)
    reads = Counter(reads_while_polling)
    assert set(reads) == run_ids
    assert all(n <= 2 for n in reads.values()), reads
    assert len(polls) <= 2 * len(run_ids), (len(polls), reads)  # each poll returned when a worker said so


def _worker_pids(instance: dg.DagsterInstance) -> list[int]:
    return [WorkerProcess.decode(run.tags[WORKER_TAG]).pid for run in instance.get_runs()]


def _one_run_per_start(monkeypatch) -> None:
    """The dispatch CLI, but each run started on its own (as deepsif-generate starts its runs)."""
    run_jobs = runs.run_jobs
    monkeypatch.setattr(runs, "run_jobs", lambda *a, **k: run_jobs(*a, **{**k, "workers": 1, "runs_per_worker": 1}))


def test_a_command_keeps_its_worker_for_all_its_runs_and_it_exits_when_the_command_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    _one_run_per_start(monkeypatch)
    data, results = tmp_path / "data", tmp_path / "results"
    sd.write_openephys_session(data, "oe_reuse")  # 3 recordings: 3 runs
    assert main(["--input", "openephys", "--data-dir", str(data), "--results-dir", str(results)]) == 0
    assert len(list(results.glob("job_*.json"))) == 3
    with dg.DagsterInstance.get() as instance:
        pids = _worker_pids(instance)
    assert len(pids) == 3 and len(set(pids)) == 1  # one worker process started, for all three runs
    assert not Path(f"/proc/{pids[0]}").exists()  # it exited and was waited for


def test_a_worker_that_died_while_idle_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    _one_run_per_start(monkeypatch)
    start = runs.RunExecutor.start
    killed = []

    def kill_idle_workers_then_start(self, specs):
        for worker in self._workers:  # white box: the idle worker a later run would be given to
            if not worker.runs and worker.process.poll() is None:
                os.kill(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
                killed.append(worker.process.pid)
        return start(self, specs)

    monkeypatch.setattr(runs.RunExecutor, "start", kill_idle_workers_then_start)
    data, results = tmp_path / "data", tmp_path / "results"
    sd.write_openephys_session(data, "oe_idle_kill", {1: (0.05, 0.05)})
    assert main(["--input", "openephys", "--data-dir", str(data), "--results-dir", str(results)]) == 0
    assert len(list(results.glob("job_*.json"))) == 2
    with dg.DagsterInstance.get() as instance:
        pids = _worker_pids(instance)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
    assert len(killed) == 1 and len(set(pids)) == 2 and killed[0] in pids
