"""``neuro_pipelines.runs``: how a command follows the runs its workers execute."""

from collections import Counter

import dagster as dg

from ephys_assets import sample_data as sd
from ephys_assets.cli import main
from neuro_pipelines import runs


def test_a_running_run_is_followed_through_its_events_without_rereading_its_record(tmp_path, monkeypatch):
    """Each poll reads the new events of a worker's run; the run's record only once an event says it ended."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
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
    assert main(["--input", "openephys", "--data-dir", str(data), "--results-dir", str(results)]) == 0
    assert len(list(results.glob("job_*.json"))) == 2  # the runs did their work
    with dg.DagsterInstance.get() as instance:
        run_ids = {run.run_id for run in instance.get_runs()}
    # a worker process alone takes seconds to start: many polls, yet each run's record was read once when it ended
    # (twice if the record trailed the ending event)
    reads = Counter(reads_while_polling)
    assert set(reads) == run_ids
    assert all(n <= 2 for n in reads.values()), reads
    assert len(polls) >= 3 * len(run_ids), (len(polls), reads)
