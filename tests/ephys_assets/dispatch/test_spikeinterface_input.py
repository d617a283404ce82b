"""``spikeinterface`` input: auto-load of native folders (binary, Zarr, groups, times) and named readers (D8/D9)."""

import numpy as np
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.dispatch import DispatchError, discover_jobs, params_from_mapping
from ephys_assets.sample_data import fault_timestamps

AUTO = {"input": "spikeinterface", "spikeinterface_info": {"reader_type": "spikeinterface"}}


@pytest.fixture(scope="module")
def si_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("si_data")
    session = root / "ecephys_session"
    session.mkdir()
    rec, _ = si.generate_ground_truth_recording(durations=[0.2, 0.2], num_channels=16, seed=0)
    rec = rec.scale_to_int16() if hasattr(rec, "scale_to_int16") else rec
    grouped = rec.clone() if hasattr(rec, "clone") else rec
    grouped.set_channel_groups([0] * 8 + [1] * 8)
    grouped.save(folder=session / "a_grouped_binary", n_jobs=1, verbose=False)
    timed = si.generate_ground_truth_recording(durations=[0.1], num_channels=4, seed=1)[0]
    fs = timed.get_sampling_frequency()
    timed.set_times(fault_timestamps(np.arange(timed.get_num_samples()) / fs, "negative"), segment_index=0)
    timed.save(format="zarr", folder=session / "b_times.zarr", n_jobs=1, verbose=False)
    return root


def test_auto_load_binary_and_zarr(si_root, tmp_path, monkeypatch):
    result = discover_jobs(si_root, params_from_mapping(AUTO))
    names = [j.recording_name for j in result.jobs]
    assert names == [
        "block0_stream0_recording1_group0",
        "block0_stream0_recording1_group1",
        "block0_stream0_recording2_group0",
        "block0_stream0_recording2_group1",
        "block1_stream0_recording1",
    ]
    assert all(j.session_name == "session1" and j.input_folder is None for j in result.jobs)
    assert result.jobs[-1].skip_times is True
    assert result.jobs[-1].timestamp_message == "too many negative timestamps diffs below 0.2: 11"
    assert any("ecephys_session" in e for e in result.log.swallowed_errors)  # D18: logged, not silent
    monkeypatch.chdir(tmp_path)
    source = si.load(si_root / "ecephys_session" / "a_grouped_binary")
    for job in result.jobs[:4]:
        rec = si.load(job.recording_dict, base_folder=si_root)
        segment = int(job.recording_name.split("recording")[1][0]) - 1
        group = int(job.recording_name[-1])
        expected_ids = [
            c
            for c, g in zip(source.get_channel_ids(), source.get_channel_groups(), strict=True)
            if g == group
        ]
        assert list(rec.get_channel_ids()) == expected_ids
        np.testing.assert_array_equal(
            rec.get_traces(), source.get_traces(segment_index=segment, channel_ids=expected_ids)
        )


def test_named_reader_injects_stream_and_applies_substrings(tmp_path):
    sd.write_spikeglx_session(tmp_path, run="r", durations_s=(0.02,), with_nidq=False)
    info = {
        "reader_type": "spikeglx",
        "reader_kwargs": {"folder_path": "r_g0"},
        "skip_stream_substrings": ["SYNC", "lf", "imec1"],
    }
    kwargs_before = dict(info["reader_kwargs"])
    result = discover_jobs(
        tmp_path, params_from_mapping({"input": "spikeinterface", "spikeinterface_info": info})
    )
    assert [j.recording_name for j in result.jobs] == [
        "block0_imec0.ap_recording1"
    ]  # D8, not block0_None_...
    assert result.jobs[0].session_name == "session0"
    assert info["reader_kwargs"] == kwargs_before  # D9: not mutated
    assert si.load(result.jobs[0].recording_dict, base_folder=tmp_path).get_num_channels() == 384


@pytest.mark.parametrize(
    ("info", "match"),
    [
        ({"reader_type": "nosuchreader", "reader_kwargs": {}}, "Reader type nosuchreader not supported"),
        ({"reader_type": "spikeglx"}, "reader_kwargs should be a dict or a list of dicts"),
        ({"reader_type": "spikeglx", "reader_kwargs": [{}, {}]}, "multi_session flag"),
        (
            {
                "reader_type": "spikeglx",
                "reader_kwargs": {},
                "keep_stream_substrings": "a",
                "skip_stream_substrings": "b",
            },
            "cannot use both",
        ),
    ],
)
def test_reader_errors(tmp_path, info, match):
    with pytest.raises(DispatchError, match=match):
        discover_jobs(tmp_path, params_from_mapping({"input": "spikeinterface", "spikeinterface_info": info}))
