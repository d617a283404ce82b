"""``nwb`` input: HDF5 and Zarr NWB, acquisition-only, ≥ 10 kHz, locations required, probe_dict for both backends."""

from datetime import UTC

import h5py
import numpy as np
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.dispatch import DispatchError, discover_jobs, params_from_mapping


@pytest.fixture(scope="module")
def nwb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nwb_data")
    sd.write_nwb_session(root / "nwbsession")
    return root


def test_hdf5_and_zarr_group_jobs_with_probe_and_traces(nwb_root, tmp_path, monkeypatch):
    result = discover_jobs(nwb_root, params_from_mapping({"input": "nwb", "multi_session": True}))
    names = [j.recording_name for j in result.jobs]
    assert names == [
        f"{stem}__block0_acquisition-ElectricalSeriesAP_recording1_groupshank{g}"
        for stem in ("sample", "sample_zarr")
        for g in (0, 1)
    ]
    monkeypatch.chdir(tmp_path)
    with h5py.File(nwb_root / "nwbsession" / "sample.nwb", "r") as f:
        written = f["acquisition/ElectricalSeriesAP/data"][:]
    for index, job in enumerate(result.jobs):
        out = job.to_json_dict()
        assert out["input_folder"] is None and "recording_lfp_dict" not in out
        assert isinstance(out["duration"], float)  # D15, also for Zarr
        probe = out["probe_dict"]  # D20: rebuilt for HDF5 and Zarr
        assert probe["annotations"]["name"] == "NeuropixelsProbe"
        assert probe["annotations"]["electrode_group_location"] == "CA1"
        assert len(probe["contact_ids"]) == 16
        rec = si.load(out["recording_dict"], base_folder=nwb_root)
        group = index % 2
        assert rec.get_num_channels() == 8 and rec.get_num_samples(segment_index=0) == 3000
        np.testing.assert_array_equal(
            rec.get_traces(return_in_uV=False), written[:, 8 * group : 8 * group + 8]
        )
    assert any("ElectricalSeriesLF" in d and "10 kHz" in d for d in result.log.dropped_streams)
    assert any("ProcessedSeries" in d for d in result.log.dropped_streams)


def test_nwb_files_list_and_single_file_rule(nwb_root):
    with pytest.raises(DispatchError, match="Multiple NWB files found"):
        discover_jobs(nwb_root, params_from_mapping({"input": "nwb"}))
    path = str(nwb_root / "nwbsession" / "sample_zarr.nwb.zarr")
    result = discover_jobs(
        nwb_root, params_from_mapping({"input": "nwb", "nwb_files": [path], "split_groups": False})
    )
    assert [j.session_name for j in result.jobs] == ["sample_zarr"]


def test_series_without_locations_is_skipped_and_empty_folder_errors(tmp_path):
    sd.write_nwb_session(tmp_path / "data", "noloc", with_locations=False, zarr_copy=False)
    with pytest.raises(DispatchError, match="No recordings found"):
        discover_jobs(tmp_path / "data", params_from_mapping({"input": "nwb"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DispatchError, match="No NWB files found in the data folder"):
        discover_jobs(tmp_path / "empty", params_from_mapping({"input": "nwb"}))


def test_nwb_without_electrodes_is_a_clear_error(tmp_path):
    from datetime import datetime

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwbfile = NWBFile("no electrodes", "x", datetime(2024, 1, 1, tzinfo=UTC))
    nwbfile.add_acquisition(TimeSeries(name="ts", data=np.zeros((10, 2)), unit="V", rate=30000.0))
    (tmp_path / "d").mkdir()
    with NWBHDF5IO(str(tmp_path / "d" / "bad.nwb"), "w") as io:
        io.write(nwbfile)
    with pytest.raises(DispatchError) as info:
        discover_jobs(tmp_path / "d", params_from_mapping({"input": "nwb"}))
    assert "bad.nwb" in str(info.value)
