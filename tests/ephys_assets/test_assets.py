"""The ``ephys_job`` asset through the code location's named job ``ephys_dispatch_job``."""

import json
import os
from pathlib import Path

import dagster as dg
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.assets import JOB_ASSET, LOAD_CHECK
from ephys_assets.dispatch import discover_jobs, params_from_mapping
from ephys_assets.dispatch.keys import recording_partition_key
from ephys_assets.jobs import DISPATCH_JOB
from ephys_assets.partitions import RECORDINGS
from neuro_pipelines.definitions import defs


@pytest.fixture
def small_sglx(tmp_path):
    data = tmp_path / "data"
    sd.write_spikeglx_session(data, run="sessA", durations_s=(0.05, 0.05), with_nidq=True)
    return data


def test_named_job_materializes_one_partition(small_sglx, tmp_path):
    results = tmp_path / "results"
    expected = discover_jobs(small_sglx, params_from_mapping({"input": "spikeglx"}))
    job = next(j for j in expected.jobs if j.recording_name == "block0_imec1.ap_recording2_group3")
    key = recording_partition_key("sessA_g0", job.recording_name)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(RECORDINGS, [key])
        result = defs.resolve_job_def(DISPATCH_JOB).execute_in_process(
            instance=instance,
            partition_key=key,
            run_config={
                "ops": {JOB_ASSET: {"config": {"input": "spikeglx"}}},
                "resources": {"ephys_paths": {"config": {"data_root": str(small_sglx), "results_root": str(results)}}},
            },
            tags={"session": "sessA_g0"},
        )
        assert result.success
        (mat,) = result.asset_materializations_for_node(JOB_ASSET)
        meta = {k: v.value for k, v in mat.metadata.items()}
        assert meta["recording_name"] == job.recording_name and meta["channels"] == 96
        assert meta["segments"] == 1 and meta["lfp_paired"] is False and meta["skip_times"] is False
        assert meta["dispatch_complete"] is False  # one of the session's ten files is written
        assert "data:image/png;base64," in meta["probe_plot"], "the probe picture is attached"
        json_path = meta["json_path"]
        (check,) = result.get_asset_check_evaluations()
        assert check.check_name == LOAD_CHECK and check.passed
        (run,) = instance.get_runs()
        assert run.job_name == DISPATCH_JOB and run.tags["dagster/partition"] == key
        assert run.tags["session"] == "sessA_g0" and "neuro/worker" in run.tags
    written = json.loads(Path(json_path).read_text())
    assert written == json.loads(json.dumps(job.to_json_dict()))
    assert os.path.dirname(json_path) == str(results / "sessA_g0")
    manifest = json.loads((results / "sessA_g0" / "manifest.json").read_text())
    assert len(manifest["jobs"]) == len(expected.jobs) == 10 and manifest["complete"] is False
    rec = si.load(written["recording_dict"], base_folder=small_sglx)
    assert set(rec.get_channel_groups().tolist()) == {3}


def test_config_rejects_bad_dispatch_parameters_before_the_step():
    from ephys_assets.config import DispatchConfig

    with pytest.raises(Exception, match="debug_duration"):
        DispatchConfig(input="spikeglx", debug_duration="soon")
    with pytest.raises(Exception, match="unknown input 'intan'"):
        DispatchConfig(input="intan")
    with pytest.raises(Exception, match="needs spikeinterface_info"):
        DispatchConfig(input="spikeinterface")
    assert DispatchConfig().input == ""  # empty: detected from the session
