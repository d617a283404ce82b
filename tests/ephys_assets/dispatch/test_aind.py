"""``aind`` input: new/old compressed layouts, uncompressed layout, session naming, missing and unreadable Zarr."""

import json
import shutil

import numpy as np
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.dispatch import DispatchError, discover_jobs, params_from_mapping
from tests.support.raw_traces import openephys_raw_traces

AP = "Record Node 101#Neuropix-PXI-100.ProbeA-AP"
LFP = "Record Node 101#Neuropix-PXI-100.ProbeA-LFP"


@pytest.fixture(scope="module")
def aind_roots(tmp_path_factory):
    roots = {}
    roots["new"] = tmp_path_factory.mktemp("aind_new")
    sd.write_aind_session(roots["new"], "ecephys_111_2024-01-01_10-00-00", experiments={1: (0.1, 0.05)})
    roots["old"] = tmp_path_factory.mktemp("aind_old")
    sd.write_aind_session(
        roots["old"], "ecephys_222_2024-01-01_10-00-00", layout="old", with_description=False, skip_zarr=[LFP]
    )
    roots["uncompressed"] = tmp_path_factory.mktemp("aind_unc")
    sd.write_aind_session(roots["uncompressed"], "ecephys_333_2024-01-01_10-00-00", layout="uncompressed")
    return roots


def _reader(d):
    while "recording" in d["kwargs"]:
        d = d["kwargs"]["recording"]
    return d


def test_new_layout_compressed_jobs_load_with_clipped_traces(aind_roots, tmp_path, monkeypatch):
    root = aind_roots["new"]
    result = discover_jobs(root, params_from_mapping({"input": "aind"}))
    assert [j.recording_name for j in result.jobs] == [
        f"experiment1_{AP}_recording1",
        f"experiment1_{AP}_recording2",
    ]
    monkeypatch.chdir(tmp_path)
    session = root / "ecephys_111_2024-01-01_10-00-00"
    for seg, job in enumerate(result.jobs, start=1):
        out = job.to_json_dict()
        assert out["session_name"] == "ecephys_111_2024-01-01_10-00-00"
        assert out["input_folder"] == "../data/ecephys_111_2024-01-01_10-00-00"
        reader = _reader(out["recording_dict"])
        assert reader["class"].endswith("ZarrRecordingExtractor")
        assert reader["kwargs"]["folder_path"] == (
            f"ecephys_111_2024-01-01_10-00-00/ecephys/ecephys_compressed/experiment1_{AP}.zarr"
        )
        rec = si.load(out["recording_dict"], base_folder=root)
        raw, names = openephys_raw_traces(
            session / "ecephys" / "ecephys_clipped", 1, seg, "Neuropix-PXI-100.ProbeA-AP"
        )
        cols = [names.index(c) for c in rec.get_channel_ids()]
        np.testing.assert_array_equal(rec.get_traces(return_in_uV=False), raw[:, cols])
        lfp = si.load(out["recording_lfp_dict"], base_folder=root)
        assert lfp.get_sampling_frequency() == 2500 and lfp.get_num_segments() == 1


def test_old_layout_without_description_and_missing_lfp_zarr(aind_roots):
    result = discover_jobs(aind_roots["old"], params_from_mapping({"input": "aind"}))
    (job,) = result.jobs
    assert job.session_name == "ecephys_222_2024-01-01_10-00-00"  # D21: folder name, not null
    assert job.recording_lfp_dict is None
    assert f"No LFP stream found for {AP}" in result.log.notes
    assert si.load(job.recording_dict, base_folder=aind_roots["old"]).get_num_channels() == 384


def test_uncompressed_layout_drops_sync_and_reads_without_sync(aind_roots):
    result = discover_jobs(aind_roots["uncompressed"], params_from_mapping({"input": "aind"}))
    (job,) = result.jobs  # D10: no 1-channel APSYNC job
    reader = _reader(job.recording_dict)
    assert reader["class"].endswith("OpenEphysBinaryRecordingExtractor")
    assert reader["kwargs"]["folder_path"] == "ecephys_333_2024-01-01_10-00-00/ecephys"
    assert reader["kwargs"]["load_sync_timestamps"] is False
    assert _reader(job.recording_lfp_dict)["kwargs"]["load_sync_timestamps"] is False  # D26
    assert any("SYNC" in d for d in result.log.dropped_streams)


def test_multi_aind_sessions_need_the_flag_and_are_sorted(aind_roots, tmp_path):
    for name in ("new", "old"):
        for session in aind_roots[name].iterdir():
            shutil.copytree(session, tmp_path / session.name)
    (tmp_path / "notes_ecephys.txt").write_text("a plain file is not a session")  # D21
    with pytest.raises(DispatchError, match="Multiple ecephys sessions found"):
        discover_jobs(tmp_path, params_from_mapping({"input": "aind"}))
    result = discover_jobs(tmp_path, params_from_mapping({"input": "aind", "multi_session": True}))
    assert [j.recording_name.split("__")[0] for j in result.jobs] == [
        "ecephys_111_2024-01-01_10-00-00",
        "ecephys_111_2024-01-01_10-00-00",
        "ecephys_222_2024-01-01_10-00-00",
    ]


def test_missing_ap_zarr_is_logged_and_unreadable_zarr_is_an_error(aind_roots, tmp_path):
    session = aind_roots["old"] / "ecephys_222_2024-01-01_10-00-00"
    copy = tmp_path / "missing" / session.name
    shutil.copytree(session, copy)
    zarr_dir = copy / "ecephys_compressed" / f"experiment1_{AP}.zarr"
    shutil.rmtree(zarr_dir)
    with pytest.raises(DispatchError, match="No recordings found to process"):
        discover_jobs(copy.parent, params_from_mapping({"input": "aind"}))
    broken = tmp_path / "broken" / session.name
    shutil.copytree(session, broken)
    bad = broken / "ecephys_compressed" / f"experiment1_{AP}.zarr"
    for meta_file in [*bad.rglob(".z*"), *bad.rglob("zarr.json")]:
        meta_file.write_text("not json")
    with pytest.raises(DispatchError, match="unreadable Zarr") as info:
        discover_jobs(broken.parent, params_from_mapping({"input": "aind"}))
    assert info.value.path == str(bad)


def test_empty_aind_folder(tmp_path):
    with pytest.raises(DispatchError, match=r"No valid ecephys sessions found\."):
        discover_jobs(tmp_path, params_from_mapping({"input": "aind"}))


def test_aind_log_utils_identity_and_use_when_installed(aind_roots, tmp_path, monkeypatch):
    """As the capsule: AIND input sets up aind_log_utils (when importable) with the first session's subject and
    asset name, "undefined" where a file is missing; other inputs and a missing package use plain logging."""
    import sys
    import types

    from ephys_assets.cli import setup_logging
    from ephys_assets.dispatch.aind import aind_logging_identity

    new_session = next(aind_roots["new"].iterdir())
    assert aind_logging_identity(aind_roots["new"]) == (
        json.loads((new_session / "subject.json").read_text())["subject_id"],
        json.loads((new_session / "data_description.json").read_text())["name"],
    )
    assert aind_logging_identity(aind_roots["old"])[1] == "undefined"  # no data_description.json
    assert aind_logging_identity(tmp_path) == ("undefined", "undefined")

    # The real package is not a dependency of this project: a stand-in module records the call.
    calls = []
    package, log_module = types.ModuleType("aind_log_utils"), types.ModuleType("aind_log_utils.log")
    log_module.setup_logging = lambda name, **kwargs: calls.append((name, kwargs))
    package.log = log_module
    monkeypatch.setitem(sys.modules, "aind_log_utils", package)
    monkeypatch.setitem(sys.modules, "aind_log_utils.log", log_module)
    setup_logging("spikeglx", aind_roots["new"])
    assert calls == []
    setup_logging("aind", aind_roots["new"])
    subject_id, asset_name = aind_logging_identity(aind_roots["new"])
    assert calls == [("Job Dispatch Ecephys", {"subject_id": subject_id, "asset_name": asset_name})]
