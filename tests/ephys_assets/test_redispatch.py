"""Re-dispatch into the same results folder: stale job files removed (flat CLI and per_session), stale partitions
reported, and the CLI's discovery log printed once."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.assets import JOB_ASSET, ephys_job
from ephys_assets.dispatch import discover_jobs, params_from_mapping, write_jobs
from ephys_assets.dispatch.keys import recording_partition_key
from ephys_assets.dispatch.outputs import MANIFEST_FILE, prune_if_complete, remove_stale_job_files
from ephys_assets.partitions import RECORDINGS
from resources.ephys_paths import EphysPaths
from tests.support.raw_traces import spikeglx_column, spikeglx_raw_traces

SESSION = "sessA_g0"


def _meta(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _shanks_from_meta(meta_path: Path) -> int:
    """Number of shanks holding saved AP channels, from ``~snsShankMap`` / ``~snsGeomMap`` (first field)."""
    meta = _meta(meta_path)
    table = meta.get("~snsShankMap") or meta["~snsGeomMap"]
    entries = table.split(")(")[1:]
    return len({entry.strip("()").split(":")[0] for entry in entries})


@pytest.fixture(scope="module")
def sglx_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("redispatch") / "data"
    sd.write_spikeglx_session(data, run="sessA", durations_s=(0.02,), with_nidq=True)
    return data


def _expected_job_count(session: Path, split_groups: bool) -> int:
    """Independent count from the metas: one job per AP probe, times its shanks when groups are split."""
    count = 0
    for meta_path in sorted(session.glob("*.ap.meta")):
        count += _shanks_from_meta(meta_path) if split_groups else 1
    return count


def _run_cli(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "ephys_assets.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_loads_like_the_bin(job_path: Path, data: Path) -> dict:
    job = json.loads(job_path.read_text())
    rec = si.load(job["recording_dict"], base_folder=data)
    stream = "imec1.ap" if "imec1" in job["recording_name"] else "imec0.ap"
    raw = spikeglx_raw_traces(data / SESSION, stream, 0)
    meta = _meta(next((data / SESSION).glob(f"*_t0.{stream}.meta")))
    assert rec.get_sampling_frequency() == float(meta["imSampRate"])
    assert rec.get_num_segments() == 1 and rec.get_num_samples(segment_index=0) == raw.shape[0]
    columns = [spikeglx_column(c) for c in rec.get_channel_ids()]
    np.testing.assert_array_equal(rec.get_traces(return_in_uV=False), raw[:, columns])
    return job


def test_cli_redispatch_with_fewer_jobs_removes_stale_files_and_logs_once(
    sglx_data, tmp_path, monkeypatch, capsys
):
    results = tmp_path / "results"
    home = tmp_path / "home"
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    base = ["--input", "spikeglx", "--data-dir", str(sglx_data), "--results-dir", str(results)]
    first = _run_cli(base, workdir, home)
    assert first.returncode == 0, first.stderr
    n_split = _expected_job_count(sglx_data / SESSION, split_groups=True)
    assert sorted(p.name for p in results.iterdir() if not p.name.startswith(".")) == sorted(
        [MANIFEST_FILE, *(f"job_{i}.json" for i in range(n_split))]
    )
    assert json.loads((results / MANIFEST_FILE).read_text())["complete"] is True

    # Task: the discovery log (drops, notes, job count) is printed once, not once per materialization too.
    lines = first.stdout.splitlines()
    discovery = [line for line in lines if line.startswith(("Dropping stream", "Generated "))]
    assert f"Generated {n_split} job config files" in discovery
    for stream in ("nidq", "imec0.lf", "imec0.ap-SYNC", "imec1.ap-SYNC"):
        assert any(line.startswith(f"Dropping stream {SESSION}/{stream}:") for line in discovery), stream
    repeated = {line: n for line, n in Counter(lines).items() if n > 1 and line in discovery}
    assert repeated == {}
    banner = [line for line in lines if line.startswith(("INPUT:", "SPLIT GROUPS:"))]
    assert banner == ["INPUT: spikeglx", "SPLIT GROUPS: True"]

    # Files that are not job files, and a directory that looks like one, must survive the prune.
    (results / "notes.txt").write_text("keep")
    (results / "job_summary.json").write_text("{}")
    (results / f"job_{n_split + 5}.json").mkdir()
    from ephys_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(workdir)
    assert (
        main([*base, "--no-split-groups"]) == 0
    )  # in-process this time (the subprocess above checks stdout)
    second_out = capsys.readouterr().out
    n_whole = _expected_job_count(sglx_data / SESSION, split_groups=False)
    assert n_whole < n_split
    job_files = sorted(p.name for p in results.glob("job_*.json") if p.is_file())
    assert job_files == [*sorted(f"job_{i}.json" for i in range(n_whole)), "job_summary.json"]
    assert (results / "notes.txt").read_text() == "keep" and (results / f"job_{n_split + 5}.json").is_dir()
    assert "removed stale job files" in second_out

    names = set()
    for i in range(n_whole):
        job = _assert_loads_like_the_bin(results / f"job_{i}.json", sglx_data)
        names.add(job["recording_name"])
    assert names == {"block0_imec0.ap_recording1", "block0_imec1.ap_recording1"}

    # The split-group partitions of the first dispatch are no longer produced: reported, not silently kept.
    old_group_keys = [
        recording_partition_key(SESSION, f"block0_imec1.ap_recording1_group{g}") for g in range(4)
    ]
    assert "partitions no longer produced" in second_out
    for key in old_group_keys:
        assert key in second_out
    with dg.DagsterInstance.get() as instance:
        assert set(old_group_keys) <= set(instance.get_dynamic_partitions(RECORDINGS))


def test_failed_cli_run_keeps_the_earlier_files(sglx_data, tmp_path, monkeypatch):
    """A dispatch that cannot finish (bad input) leaves every file of the previous one in place."""
    results = tmp_path / "results"
    write_jobs(discover_jobs(sglx_data, params_from_mapping({"input": "spikeglx"})).jobs, results)
    before = {p.name: p.read_text() for p in results.iterdir()}
    empty = tmp_path / "empty"
    empty.mkdir()
    from ephys_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["--input", "spikeglx", "--data-dir", str(empty), "--results-dir", str(results)]) == 2
    assert {p.name: p.read_text() for p in results.iterdir()} == before


def test_prune_waits_for_every_current_file(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    for i in range(4):
        (folder / f"job_{i}.json").write_text(f"old {i}")
    (folder / "job_x.json").write_text("not a job file name")
    outside = tmp_path / "job_9.json"
    outside.write_text("outside the folder")
    expected = {"job_0.json": "new 0", "job_1.json": "new 1"}
    (folder / "job_0.json").write_text("new 0")
    pending, removed = prune_if_complete(folder, expected)
    assert pending == ["job_1.json"] and removed == []  # job_1 still old: nothing removed yet
    assert len(list(folder.glob("job_*.json"))) == 5
    (folder / "job_1.json").write_text("new 1")
    pending, removed = prune_if_complete(folder, expected)
    assert pending == [] and sorted(p.name for p in removed) == ["job_2.json", "job_3.json"]
    assert sorted(p.name for p in folder.iterdir()) == ["job_0.json", "job_1.json", "job_x.json"]
    assert outside.exists()
    assert remove_stale_job_files(tmp_path / "missing", []) == []


def _materialize(instance, data, results, keys, config):
    resources = {"ephys_paths": EphysPaths(data_root=str(data), results_root=str(results))}
    for key in keys:
        result = dg.materialize(
            [ephys_job],
            instance=instance,
            partition_key=key,
            resources=resources,
            run_config={"ops": {JOB_ASSET: {"config": config}}},
            tags={"session": SESSION},
        )
        assert result.success


def test_per_session_redispatch_prunes_when_complete_and_reports_stale_keys(sglx_data, tmp_path):
    results = tmp_path / "results"
    split = discover_jobs(sglx_data, params_from_mapping({"input": "spikeglx"}), sessions=[SESSION])
    whole = discover_jobs(
        sglx_data, params_from_mapping({"input": "spikeglx", "split_groups": False}), sessions=[SESSION]
    )
    split_keys = [recording_partition_key(SESSION, j.recording_name) for j in split.jobs]
    whole_keys = [recording_partition_key(SESSION, j.recording_name) for j in whole.jobs]
    folder = results / SESSION
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(RECORDINGS, split_keys)
        _materialize(instance, sglx_data, results, split_keys, {"sessions": [SESSION]})
        assert sorted(p.name for p in folder.glob("job_*.json")) == sorted(
            f"job_{i}.json" for i in range(len(split_keys))
        )
        assert json.loads((folder / MANIFEST_FILE).read_text())["complete"] is True

        # The session changes (e.g. through its ephys_dispatch.json, as the sensor would see it): fewer jobs.
        (sglx_data / SESSION / "ephys_dispatch.json").write_text(json.dumps({"split_groups": False}))
        try:
            instance.add_dynamic_partitions(RECORDINGS, [k for k in whole_keys if k not in split_keys])
            _materialize(instance, sglx_data, results, whole_keys[:1], {"sessions": [SESSION]})
            half = json.loads((folder / MANIFEST_FILE).read_text())
            # half-way: job_1 still holds the earlier dispatch's content, so nothing is removed yet
            assert half["complete"] is False and half["pending_files"] == ["job_1.json"]
            assert len(list(folder.glob("job_*.json"))) == len(split_keys)
            _materialize(instance, sglx_data, results, whole_keys[1:], {"sessions": [SESSION]})
        finally:
            (sglx_data / SESSION / "ephys_dispatch.json").unlink()
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        assert manifest["complete"] is True
        assert sorted(p.name for p in folder.glob("job_*.json")) == ["job_0.json", "job_1.json"]
        assert sorted(manifest["stale_files_removed"]) == sorted(
            f"job_{i}.json" for i in range(len(whole_keys), len(split_keys))
        )
        assert manifest["stale_partition_keys"] == sorted(set(split_keys) - set(whole_keys))
        assert [row["partition_key"] for row in manifest["jobs"]] == whole_keys
        latest = instance.get_latest_materialization_event(dg.AssetKey(JOB_ASSET)).asset_materialization
        assert latest.metadata["stale_partition_keys"].value == manifest["stale_partition_keys"]
    for i, job in enumerate(whole.jobs):
        written = _assert_loads_like_the_bin(folder / f"job_{i}.json", sglx_data)
        assert written["recording_name"] == job.recording_name
