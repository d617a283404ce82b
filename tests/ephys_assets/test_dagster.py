"""Dagster layer: partition keys, Definitions-level materialization, sensor ticks, and the CLI end to end."""

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.assets import JOB_ASSET, LOAD_CHECK, ephys_job
from ephys_assets.dispatch import discover_jobs, params_from_mapping
from ephys_assets.partitions import RECORDINGS, recording_partition_key
from ephys_assets.sensors import ephys_new_session_sensor
from neuro_core.keys import validate_key
from resources.ephys_paths import EphysPaths


def test_partition_key_mapping_is_safe_and_stable():
    key = recording_partition_key(
        "oe_session", "experiment1_Record Node 101#Neuropix-PXI-100.ProbeA-AP_recording1"
    )
    assert key == "oe_session__experiment1_Record-Node-101-Neuropix-PXI-100.ProbeA-AP_recording1"
    long_key = recording_partition_key("s" * 150, "r" * 150)
    assert len(long_key) <= 200 and validate_key(long_key) == long_key
    assert long_key != recording_partition_key("s" * 150, "r" * 149 + "x")


@pytest.fixture
def small_sglx(tmp_path):
    data = tmp_path / "data"
    sd.write_spikeglx_session(data, run="sessA", durations_s=(0.05, 0.05), with_nidq=True)
    return data


def test_definitions_materialize_one_partition(small_sglx, tmp_path):
    results = tmp_path / "results"
    defs = dg.Definitions(
        assets=[ephys_job],
        resources={"ephys_paths": EphysPaths(data_root=str(small_sglx), results_root=str(results))},
    )
    expected = discover_jobs(small_sglx, params_from_mapping({"input": "spikeglx"}))
    job = next(j for j in expected.jobs if j.recording_name == "block0_imec1.ap_recording2_group3")
    key = recording_partition_key("sessA_g0", job.recording_name)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(RECORDINGS, [key])
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            partition_key=key,
            run_config={"ops": {JOB_ASSET: {"config": {"input": "spikeglx"}}}},
            tags={"session": "sessA_g0"},
        )
        assert result.success
        (mat,) = result.asset_materializations_for_node(JOB_ASSET)
        meta = {k: v.value for k, v in mat.metadata.items()}
        assert meta["recording_name"] == job.recording_name and meta["channels"] == 96
        assert meta["segments"] == 1 and meta["lfp_paired"] is False and meta["skip_times"] is False
        assert "data:image/png;base64," in meta["probe_layout"], "the probe layout picture is attached"
        json_path = meta["json_path"]
        (check,) = result.get_asset_check_evaluations()
        assert check.check_name == LOAD_CHECK and check.passed
        runs = instance.get_runs()
        assert runs[0].tags["session"] == "sessA_g0"
    written = json.loads(Path(json_path).read_text())
    assert written == json.loads(json.dumps(job.to_json_dict()))
    assert os.path.dirname(json_path) == str(results / "sessA_g0")
    manifest = json.loads((results / "sessA_g0" / "manifest.json").read_text())
    assert len(manifest["jobs"]) == len(expected.jobs) == 10
    rec = si.load(written["recording_dict"], base_folder=small_sglx)
    assert set(rec.get_channel_groups().tolist()) == {3}


def _tick(instance, data, cursor=None, quiet=0.0):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "ephys_paths": EphysPaths(
                data_root=str(data), results_root=str(data.parent / "r"), sensor_quiet_seconds=quiet
            )
        },
    )
    return ephys_new_session_sensor(context)


def test_sensor_new_unchanged_changed_and_not_quiet(tmp_path):
    data = tmp_path / "data"
    sd.write_spikeglx_session(data, run="sessA", durations_s=(0.05,), with_np2=False, with_nidq=False)
    with dg.instance_for_test() as instance:
        # not yet quiet: files were just written
        waiting = _tick(instance, data, quiet=3600)
        assert waiting.run_requests == [] and waiting.dynamic_partitions_requests == []
        # new session, quiet: keys added and runs requested in the same tick
        first = _tick(instance, data, cursor=waiting.cursor)
        (add,) = first.dynamic_partitions_requests
        assert add.partition_keys == ["sessA_g0__block0_imec0.ap_recording1"]
        (request,) = first.run_requests
        assert request.partition_key == add.partition_keys[0] and request.tags["session"] == "sessA_g0"
        assert request.run_config["ops"][JOB_ASSET]["config"] == {
            "sessions": ["sessA_g0"],
            "input": "spikeglx",
        }
        instance.add_dynamic_partitions(RECORDINGS, add.partition_keys)
        # unchanged: nothing dispatched twice
        again = _tick(instance, data, cursor=first.cursor)
        assert again.run_requests == [] and again.dynamic_partitions_requests == []
        # changed contents (a per-session parameter file): re-dispatched with a new run key
        params_file = data / "sessA_g0" / "ephys_dispatch.json"
        params_file.write_text(json.dumps({"split_segments": False}))
        old = time.time() - 120
        os.utime(params_file, (old, old))
        changed = _tick(instance, data, cursor=again.cursor)
        keys = [r.partition_key for r in changed.run_requests]
        assert keys == ["sessA_g0__block0_imec0.ap_recording"]
        assert changed.run_requests[0].run_key != request.run_key
        kinds = {type(r).__name__: r.partition_keys for r in changed.dynamic_partitions_requests}
        assert kinds["DeleteDynamicPartitionsRequest"] == ["sessA_g0__block0_imec0.ap_recording1"]
        assert kinds["AddDynamicPartitionsRequest"] == keys


def test_sensor_records_bad_session_without_crashing(tmp_path):
    data = tmp_path / "data"
    folder = sd.write_spikeglx_session(
        data, run="bad", durations_s=(0.02,), with_np2=False, with_nidq=False, with_lf=False
    )
    bin_path = next(folder.glob("*.ap.bin"))
    with open(bin_path, "ab") as f:
        f.write(b"\x00")  # truncated frame
    with dg.instance_for_test() as instance:
        result = _tick(instance, data)
        assert result.run_requests == []
        assert "truncated" in json.loads(result.cursor)["bad_g0"]["error"]


def test_cli_end_to_end(tmp_path, monkeypatch, capsys):
    from ephys_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    sd.write_openephys_session(data, "oe_cli", {1: (0.05, 0.05)})
    results = tmp_path / "results"
    code = main(
        ["--input", "openephys", "--data-dir", str(data), "--results-dir", str(results), "--concatenate"]
    )
    assert code == 0
    assert sorted(p.name for p in results.iterdir()) == ["job_0.json"]
    job = json.loads((results / "job_0.json").read_text())
    assert job["recording_name"] == "experiment1_Record Node 101#Neuropix-PXI-100.ProbeA-AP_recording"
    rec = si.load(job["recording_dict"], base_folder=data)
    assert rec.get_num_segments() == 2 and rec.get_num_samples(segment_index=1) == 1500
    assert "1/1 job files written" in capsys.readouterr().out
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions(RECORDINGS) == [
            "oe_cli__experiment1_Record-Node-101-Neuropix-PXI-100.ProbeA-AP_recording"
        ]
        assert instance.get_latest_materialization_event(dg.AssetKey(JOB_ASSET)) is not None


def test_cli_bad_input_nonzero_and_nothing_written(tmp_path, monkeypatch, capsys):
    from ephys_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    data.mkdir()
    results = tmp_path / "results"
    assert main(["--input", "spikeglx", "--data-dir", str(data), "--results-dir", str(results)]) != 0
    assert "No valid SpikeGLX folder found." in capsys.readouterr().err
    assert not results.exists() or not any(results.iterdir())
    assert main(["--data-dir", str(data), "--results-dir", str(results)]) != 0
    assert "'input' is required" in capsys.readouterr().err
