"""Job JSON contract for SpikeGLX and Open Ephys: names, fields, order, relative paths, and reloaded traces."""

import json
import os
import re

import numpy as np
import pytest
import spikeinterface as si

from ephys_assets.dispatch import discover_jobs, params_from_mapping, write_jobs
from tests.support.raw_traces import (
    openephys_raw_traces,
    spikeglx_column,
    spikeglx_raw_traces,
)

FIELD_ORDER = [
    "session_name",
    "recording_name",
    "recording_dict",
    "skip_times",
    "duration",
    "input_folder",
    "debug",
]
OE_AP = "Record Node 101#Neuropix-PXI-100.ProbeA-AP"


def _written(jobs, results):
    paths = write_jobs(jobs, results)
    return [json.loads(p.read_text()) for p in paths], paths


@pytest.fixture(scope="module")
def sglx_written(sglx_root, tmp_path_factory):
    result = discover_jobs(sglx_root, params_from_mapping({"input": "spikeglx"}))
    return result, *_written(result.jobs, tmp_path_factory.mktemp("sglx_results"))


def test_spikeglx_default_jobs_names_and_fields(sglx_written, sglx_root):
    result, written, paths = sglx_written
    names = [j["recording_name"] for j in written]
    from spikeinterface.extractors.neoextractors import SpikeGLXRecordingExtractor

    by_stream = {
        "imec1.ap": [f"block0_imec1.ap_recording{s}_group{g}" for s in (1, 2) for g in range(4)],
        "imec0.ap": ["block0_imec0.ap_recording1", "block0_imec0.ap_recording2"],
    }
    neo_order = [
        s for s in SpikeGLXRecordingExtractor.get_streams(sglx_root / "sglx_sessionA_g0")[0] if s in by_stream
    ]
    expected = [name for stream in neo_order for name in by_stream[stream]]
    assert names == expected
    assert [p.name for p in paths] == [f"job_{i}.json" for i in range(10)]
    for job in written:
        keys = list(job)
        has_lfp = job["recording_name"].startswith("block0_imec0")
        assert keys == [*FIELD_ORDER, *(["recording_lfp_dict"] if has_lfp else []), "multi_input"]
        assert job["session_name"] == "sglx_sessionA_g0"
        assert job["input_folder"] == "../data/sglx_sessionA_g0"
        assert isinstance(job["duration"], float) and job["skip_times"] is False and job["debug"] is False
        assert job["multi_input"] is False
        assert job["recording_dict"]["relative_paths"] is True
    dropped = " ".join(result.log.dropped_streams)
    for stream in ("nidq", "imec0.lf", "imec1.ap-SYNC", "imec0.ap-SYNC"):
        assert stream in dropped
    assert "No LFP stream found for imec1.ap" in result.log.notes


def _reader_dict(d):
    while "recording" in d["kwargs"] or "parent_recording" in d["kwargs"] or "recording_list" in d["kwargs"]:
        kw = d["kwargs"]
        d = kw.get("recording") or kw.get("parent_recording") or kw["recording_list"][0]
    return d


def test_spikeglx_jobs_load_elsewhere_with_right_traces(sglx_written, sglx_root, tmp_path, monkeypatch):
    _result, written, _paths = sglx_written
    monkeypatch.chdir(tmp_path)  # another working directory: only base_folder makes paths resolvable
    session = sglx_root / "sglx_sessionA_g0"
    for job in written:
        reader = _reader_dict(job["recording_dict"])
        assert reader["class"].endswith("SpikeGLXRecordingExtractor")
        assert reader["kwargs"]["folder_path"] == "sglx_sessionA_g0"
        rec = si.load(job["recording_dict"], base_folder=sglx_root)
        segment = int(re.search(r"recording(\d)", job["recording_name"])[1]) - 1
        stream = "imec1.ap" if "imec1" in job["recording_name"] else "imec0.ap"
        raw = spikeglx_raw_traces(session, stream, segment)
        assert rec.get_num_segments() == 1
        assert rec.get_num_samples(segment_index=0) == raw.shape[0]
        assert rec.get_num_channels() == (96 if stream == "imec1.ap" else 384)
        assert job["duration"] == round(raw.shape[0] / 30000, 2)
        columns = [spikeglx_column(c) for c in rec.get_channel_ids()]
        np.testing.assert_array_equal(rec.get_traces(return_in_uV=False), raw[:, columns])
        if stream == "imec1.ap":
            groups = set(rec.get_channel_groups().tolist())
            assert groups == {int(job["recording_name"][-1])}
        else:
            lfp = si.load(job["recording_lfp_dict"], base_folder=sglx_root)
            raw_lf = spikeglx_raw_traces(session, "imec0.lf", segment)
            assert lfp.get_sampling_frequency() == 2500
            np.testing.assert_array_equal(lfp.get_traces(return_in_uV=False), raw_lf[:, :384])


def test_spikeglx_no_split_two_jobs_with_all_segments(sglx_root):
    result = discover_jobs(
        sglx_root, params_from_mapping({"input": "spikeglx", "split_segments": False, "split_groups": False})
    )
    assert sorted(j.recording_name for j in result.jobs) == [
        "block0_imec0.ap_recording",
        "block0_imec1.ap_recording",
    ]
    for job in result.jobs:
        rec = si.load(job.recording_dict, base_folder=sglx_root)
        assert rec.get_num_segments() == 2 and rec.get_num_channels() == 384
        assert job.duration == round((6000 + 3000) / 30000, 2)


def test_debug_clip_per_segment_at_each_rate(sglx_root):
    params = params_from_mapping(
        {"input": "spikeglx", "debug": True, "debug_duration": 0.05, "split_segments": False}
    )
    result = discover_jobs(sglx_root, params)
    imec0 = next(j for j in result.jobs if "imec0" in j.recording_name)
    rec = si.load(imec0.recording_dict, base_folder=sglx_root)
    lfp = si.load(imec0.recording_lfp_dict, base_folder=sglx_root)
    assert [rec.get_num_samples(segment_index=k) for k in range(2)] == [1500, 1500]
    assert [lfp.get_num_samples(segment_index=k) for k in range(2)] == [125, 125]
    assert imec0.duration == 0.1 and imec0.debug is True
    assert imec0.recording_dict["class"].endswith("AppendSegmentRecording")
    # a clip longer than a segment keeps the segment whole
    long_clip = discover_jobs(
        sglx_root, params_from_mapping({"input": "spikeglx", "debug": True, "debug_duration": 0.15})
    )
    samples = [j.num_samples for j in long_clip.jobs if "imec0" in j.recording_name]
    assert samples == [(4500,), (3000,)]


def test_debug_default_duration_is_30s_in_params_mode():
    assert params_from_mapping({"input": "spikeglx", "debug": True}).debug_duration == 30.0


def test_openephys_jobs_timestamps_and_traces(oe_root, tmp_path, monkeypatch):
    result = discover_jobs(oe_root, params_from_mapping({"input": "openephys"}))
    names = [j.recording_name for j in result.jobs]
    assert names == [
        f"experiment1_{OE_AP}_recording1",
        f"experiment1_{OE_AP}_recording2",
        f"experiment2_{OE_AP}_recording1",
    ]
    assert [j.skip_times for j in result.jobs] == [False, True, False]
    assert result.jobs[1].timestamp_message == "too large time diff deviation: 10.03 ms"
    assert any("NI-DAQ" in d for d in result.log.dropped_streams)
    monkeypatch.chdir(tmp_path)
    session = oe_root / "oe_session"
    for job, (experiment, recording) in zip(result.jobs, [(1, 1), (1, 2), (2, 1)], strict=True):
        reader = _reader_dict(job.recording_dict)
        assert reader["kwargs"]["folder_path"] == "oe_session"
        assert reader["kwargs"]["load_sync_timestamps"] is True
        rec = si.load(job.recording_dict, base_folder=oe_root)
        raw, names_in_file = openephys_raw_traces(
            session, experiment, recording, "Neuropix-PXI-100.ProbeA-AP"
        )
        assert rec.get_num_samples(segment_index=0) == raw.shape[0]
        cols = [names_in_file.index(c) for c in rec.get_channel_ids()]
        np.testing.assert_array_equal(rec.get_traces(return_in_uV=False), raw[:, cols])
        lfp = si.load(job.recording_lfp_dict, base_folder=oe_root)
        assert _reader_dict(job.recording_lfp_dict)["kwargs"]["load_sync_timestamps"] is True  # D26
        raw_lfp, _lfp_names = openephys_raw_traces(
            session, experiment, recording, "Neuropix-PXI-100.ProbeA-LFP"
        )
        assert lfp.get_num_samples(segment_index=0) == raw_lfp.shape[0]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("jump", "too large time diff deviation: 10.03 ms"),
        ("negative", "too many negative timestamps diffs below 0.2: 11"),
        ("zeros", None),
    ],
)
def test_each_timestamp_rule_sets_skip_times(oe_fault_roots, fault, message):
    root = oe_fault_roots[fault]
    result = discover_jobs(root, params_from_mapping({"input": "openephys"}))
    (job,) = result.jobs
    assert job.skip_times is True
    times = np.load(next(root.rglob("Neuropix-PXI-100.ProbeA-AP/timestamps.npy")))
    if message is None:  # independent count of zero diffs
        n_zero = int(np.sum(np.diff(times) == 0))
        message = f"too many zero diffs: {n_zero}/{len(times) - 1}"
    assert job.timestamp_message == message
    skipped = discover_jobs(root, params_from_mapping({"input": "openephys", "skip_timestamps_check": True}))
    assert skipped.jobs[0].skip_times is False


def test_duration_comes_from_the_time_vector_when_the_check_is_skipped(oe_fault_roots):
    """A 0.1 s recording whose timestamps jump by 10 ms: the original reports 0.11 with the check skipped (its time
    vector), 0.1 with the check on (timestamps reset)."""
    root = oe_fault_roots["jump"]
    times = np.load(next(root.rglob("Neuropix-PXI-100.ProbeA-AP/timestamps.npy")))
    from_time_vector = round(float(times[-1] - times[0] + np.median(np.diff(times))), 2)
    checked = discover_jobs(root, params_from_mapping({"input": "openephys"}))
    skipped = discover_jobs(root, params_from_mapping({"input": "openephys", "skip_timestamps_check": True}))
    assert checked.jobs[0].duration == round(len(times) / 30000.0, 2) == 0.1
    assert skipped.jobs[0].duration == from_time_vector == 0.11


def test_min_duration_is_judged_per_part(oe_root):
    per_part = discover_jobs(
        oe_root, params_from_mapping({"input": "openephys", "min_recording_duration": 0.18})
    )
    assert [j.recording_name.split("_")[-1] for j in per_part.jobs] == ["recording1"]
    assert any("with duration 0.15s" in s for s in per_part.log.skipped_recordings)
    whole = discover_jobs(
        oe_root,
        params_from_mapping(
            {"input": "openephys", "min_recording_duration": "0.18", "split_segments": False}
        ),
    )
    assert [j.duration for j in whole.jobs] == [
        0.35
    ]  # experiment1 kept whole (0.2 + 0.15); experiment2 (0.1) skipped


def test_multi_session_prefixes_and_sorted_order(tmp_path):
    from ephys_assets import sample_data as sd

    for run in ("sessB", "sessA"):
        sd.write_spikeglx_session(tmp_path, run=run, durations_s=(0.05,), with_np2=False, with_nidq=False)
    (tmp_path / "probe_files").mkdir()  # D22: a folder without .meta files is not a session
    result = discover_jobs(tmp_path, params_from_mapping({"input": "spikeglx", "multi_session": True}))
    assert [j.recording_name for j in result.jobs] == [
        "sessA_g0__block0_imec0.ap_recording1",
        "sessB_g0__block0_imec0.ap_recording1",
    ]
    assert all(j.to_json_dict()["multi_input"] is True for j in result.jobs)


def test_relative_paths_keep_symlinks(sglx_root, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(sglx_root / "sglx_sessionA_g0", data / "ecephys_session")
    result = discover_jobs(data, params_from_mapping({"input": "spikeglx", "split_groups": False}))
    reader = _reader_dict(result.jobs[0].recording_dict)
    assert reader["kwargs"]["folder_path"] == "ecephys_session"  # not the resolved target (D13)
    rec = si.load(result.jobs[0].recording_dict, base_folder=data)
    assert rec.get_num_channels() == 384


def test_openephys_onebox_adc_never_dispatched(tmp_path):
    from ephys_assets import sample_data as sd

    sd.write_openephys_onebox_session(tmp_path, duration_s=0.05)
    result = discover_jobs(tmp_path, params_from_mapping({"input": "openephys", "split_groups": False}))
    assert [j.recording_name for j in result.jobs] == [
        "experiment1_Record Node 101#OneBox-111.ProbeA_recording1"
    ]
    assert result.jobs[0].recording_lfp_dict is None  # wideband: no LFP dict
    assert any("ADC" in d for d in result.log.dropped_streams)
