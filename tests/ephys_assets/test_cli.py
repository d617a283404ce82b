"""``ephys-dispatch`` end to end: runs of the named job, exit codes, the shared dispatch record with the sensor,
one dispatch per results folder at a time, completion markers, and recovery after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.cli import main
from ephys_assets.dispatch.outputs import MANIFEST_FILE
from ephys_assets.jobs import DISPATCH_JOB
from ephys_assets.partitions import RECORDINGS
from tests.ephys_assets.test_sensors import tick
from tests.support.small_filesystem import small_filesystem


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def job_files(results: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(results.glob("job_*.json"))}


def test_end_to_end_runs_the_named_job(tmp_path, home, capsys):
    data = tmp_path / "data"
    sd.write_openephys_session(data, "oe_cli", {1: (0.05, 0.05)})
    results = tmp_path / "results"
    args = ["--input", "openephys", "--data-dir", str(data), "--results-dir", str(results), "--concatenate"]
    assert main(args) == 0
    assert list(job_files(results)) == ["job_0.json"]
    job = json.loads((results / "job_0.json").read_text())
    assert job["recording_name"] == "experiment1_Record Node 101#Neuropix-PXI-100.ProbeA-AP_recording"
    rec = si.load(job["recording_dict"], base_folder=data)
    assert rec.get_num_segments() == 2 and rec.get_num_samples(segment_index=1) == 1500
    assert "1/1 job files written" in capsys.readouterr().out
    manifest = json.loads((results / MANIFEST_FILE).read_text())
    assert manifest["complete"] is True and list(manifest["sessions"]) == ["oe_cli"]
    with dg.DagsterInstance.get() as instance:
        (key,) = instance.get_dynamic_partitions(RECORDINGS)
        assert key == "oe_cli__experiment1_Record-Node-101-Neuropix-PXI-100.ProbeA-AP_recording"
        (run,) = instance.get_runs()
        assert run.job_name == DISPATCH_JOB and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == key and run.tags["neuro/launched-by"] == "ephys-dispatch"
    # unchanged: nothing to do, no new run; --force dispatches again
    assert main(args) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main([*args, "--force"]) == 0
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 2


def test_bad_input_exits_2_and_writes_nothing(tmp_path, home, capsys):
    data = tmp_path / "data"
    data.mkdir()
    results = tmp_path / "results"
    assert main(["--input", "spikeglx", "--data-dir", str(data), "--results-dir", str(results)]) == 2
    assert "No valid SpikeGLX folder found." in capsys.readouterr().err
    assert not results.exists() or not any(results.iterdir())
    assert main(["--data-dir", str(data), "--results-dir", str(results)]) == 2
    assert "--input is required" in capsys.readouterr().err
    assert not home.exists(), "no instance is created for bad input"


def test_read_only_results_folder_is_one_early_error(tmp_path, home, capsys):
    data = tmp_path / "data"
    sd.write_spikeglx_session(data, run="ro", durations_s=(0.02,), with_np2=True, with_nidq=False)
    with small_filesystem(tmp_path / "results", 1 << 20, read_only=True) as results:
        code = main(["--input", "spikeglx", "--data-dir", str(data), "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "not writable" in err and str(results) in err, err


def test_sensor_does_not_redispatch_what_the_cli_dispatched(tmp_path, home):
    data = tmp_path / "data"
    session = sd.write_spikeglx_session(data, run="shared", durations_s=(0.02,), with_np2=False, with_nidq=False)
    results = tmp_path / "results"
    assert main(["--input", "spikeglx", "--data-dir", str(data), "--results-dir", str(results)]) == 0
    with dg.DagsterInstance.get() as instance:
        quiet = tick(instance, data, results=results)
        assert quiet.run_requests == [] and quiet.dynamic_partitions_requests == []
        assert "dispatched" in json.loads(quiet.cursor)["shared_g0"]
        (session / "notes.txt").write_text("the session changed")
        old = time.time() - 120
        os.utime(session / "notes.txt", (old, old))
        changed = tick(instance, data, cursor=quiet.cursor, results=results)
        assert [r.tags["session"] for r in changed.run_requests] == ["shared_g0"]


def test_unicode_sessions_through_the_cli_keep_both_jobs(tmp_path, home):
    data = tmp_path / "data"
    for run in ("ünïcödé", "änïcödá"):
        sd.write_spikeglx_session(data, run=run, durations_s=(0.02,), with_np2=False, with_nidq=False)
    results = tmp_path / "results"
    args = ["--input", "spikeglx", "--multi-session", "--data-dir", str(data), "--results-dir", str(results)]
    assert main(args) == 0
    jobs = [json.loads(text) for text in job_files(results).values()]
    assert sorted(j["session_name"] for j in jobs) == ["änïcödá_g0", "ünïcödé_g0"]
    with dg.DagsterInstance.get() as instance:
        assert len(set(instance.get_dynamic_partitions(RECORDINGS))) == 2


def _cli(data: Path, results: Path, home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ephys_assets.cli", "--input", "spikeglx", "--multi-session",
         "--data-dir", str(data), "--results-dir", str(results)],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _many_sessions(data: Path, runs: str) -> Path:
    for run in runs:
        sd.write_spikeglx_session(data, run=run, durations_s=(0.02,), with_np2=False, with_nidq=False)
    return data


def test_second_dispatch_into_a_busy_results_folder_fails_at_once(tmp_path, home):
    results = tmp_path / "results"
    first = _cli(_many_sessions(tmp_path / "a", "abcdef"), results, home)
    _wait_for(lambda: (results / MANIFEST_FILE).exists())
    second = _cli(_many_sessions(tmp_path / "b", "xyz"), results, home)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2 and "being written by another dispatch" in err
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    jobs = [json.loads(text) for text in job_files(results).values()]
    assert sorted({j["session_name"] for j in jobs}) == [f"{r}_g0" for r in "abcdef"], "no mix of two dispatches"
    assert json.loads((results / MANIFEST_FILE).read_text())["complete"] is True


def test_kill_9_mid_dispatch_then_rerun(tmp_path, home):
    data = _many_sessions(tmp_path / "data", "abcdefgh")
    results = tmp_path / "results"
    reference = tmp_path / "reference"
    process = _cli(data, results, home)
    _wait_for(lambda: len(job_files(results)) >= 2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    manifest = json.loads((results / MANIFEST_FILE).read_text())
    assert manifest["complete"] is False, "a killed dispatch is recognisable as such"
    (results / ".job_3.json.abcd1234.tmp").write_text("half a file")  # what a kill mid-write leaves
    rerun = _cli(data, results, home)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert json.loads((results / MANIFEST_FILE).read_text())["complete"] is True
    assert not list(results.glob(".*.tmp")), "our temp files are cleaned up"
    clean = _cli(data, reference, tmp_path / "home2")
    assert clean.wait(timeout=600) == 0
    assert job_files(results) == job_files(reference)
    with dg.DagsterInstance.get() as instance:
        unfinished = [r for r in instance.get_runs() if r.status not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)]
        assert unfinished == [], "runs of the killed dispatch were reaped"


def test_probe_less_open_ephys_jobs_are_written_with_a_warning(tmp_path, home, capsys):
    data = tmp_path / "data"
    session = sd.write_openephys_session(data, "oe_nosettings", {1: (0.02,)})
    for settings in session.rglob("settings*.xml"):
        settings.unlink()
    results = tmp_path / "results"
    assert main(["--input", "openephys", "--data-dir", str(data), "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: " in out and "has no probe" in out
    assert json.loads((results / MANIFEST_FILE).read_text())["warnings"], "the warning is in the manifest too"
