"""Probe and stream coverage: empty probe names (D14/D27), streams without a node prefix (D25), several record
nodes (D23), the Rhythm rule, per-stream ``probe_paths``, and every other shipped SpikeGLX / Open Ephys metadata.

Expected values come from the metadata files themselves (``.meta``, ``structure.oebin``), parsed here, and every
emitted job is reloaded with ``spikeinterface.load`` from another working directory.
"""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import spikeinterface as si

from ephys_assets import sample_data as sd
from ephys_assets.dispatch import DispatchError, discover_jobs, params_from_mapping

OE_AP_FOLDER = "Neuropix-PXI-100.ProbeA-AP"
OE_NP1_NODE = sd.OPENEPHYS_META / "OE_Neuropix-PXI-NP1-binary" / "Record_Node_101"
OE_NP1_OEBIN = OE_NP1_NODE / "experiment1" / "recording1" / "structure.oebin"
MAIN_ANNOTATIONS = {"is_filtered", "name"}


def _oebin_stream(rec_folder: Path, folder: str) -> dict:
    structure = json.loads((rec_folder / "structure.oebin").read_text())
    return next(s for s in structure["continuous"] if s["folder_name"].rstrip("/") == folder)


def _oe_raw(rec_folder: Path, folder: str) -> tuple[np.ndarray, list[str], float]:
    """(traces of the non-SYNC channels, their names, sample rate) straight from continuous.dat."""
    stream = _oebin_stream(rec_folder, folder)
    names = [c["channel_name"] for c in stream["channels"]]
    data = np.fromfile(rec_folder / "continuous" / folder / "continuous.dat", dtype=np.int16)
    data = data.reshape(-1, len(names))
    keep = [i for i, n in enumerate(names) if "SYNC" not in n]
    return data[:, keep], [names[i] for i in keep], float(stream["sample_rate"])


def _check_oe_job(job, data_root: Path, rec_folder: Path, folder: str) -> si.BaseRecording:
    rec = si.load(job.to_json_dict()["recording_dict"], base_folder=data_root)
    raw, names, rate = _oe_raw(rec_folder, folder)
    assert rec.get_sampling_frequency() == rate and rec.get_num_segments() == 1
    assert rec.get_num_samples(segment_index=0) == raw.shape[0]
    cols = [names.index(c) for c in rec.get_channel_ids()]
    np.testing.assert_array_equal(rec.get_traces(return_in_uV=False), raw[:, cols])
    return rec


def _blank_probe_name(settings: Path) -> None:
    text = settings.read_text()
    assert 'custom_probe_name="22327206081"' in text
    settings.write_text(text.replace('custom_probe_name="22327206081"', 'custom_probe_name=""'))


# ------------------------------------------------------------------------------------------ D14 / D27 / D25


def test_empty_probe_name_fixed_per_recording_in_openephys(tmp_path, monkeypatch):
    session = sd.write_openephys_session(tmp_path / "data", "oe_blank", {1: (0.02,), 2: (0.02,)})
    _blank_probe_name(session / "Record Node 101" / "settings.xml")  # experiment1 only; settings_2.xml intact
    result = discover_jobs(tmp_path / "data", params_from_mapping({"input": "openephys"}))
    assert len(result.jobs) == 2
    fixed, intact = result.jobs
    # D14: annotations only for the recording whose probe was fixed, not for every later one
    assert set(fixed.recording_dict["annotations"]) > MAIN_ANNOTATIONS - {"name"}
    assert "experiment_name" in fixed.recording_dict["annotations"]
    assert set(intact.recording_dict["annotations"]) <= MAIN_ANNOTATIONS
    assert any("empty name" in note for note in result.log.notes)
    monkeypatch.chdir(tmp_path)
    node = session / "Record Node 101"
    for job, experiment in ((fixed, 1), (intact, 2)):
        rec = _check_oe_job(
            job, tmp_path / "data", node / f"experiment{experiment}" / "recording1", OE_AP_FOLDER
        )
        assert rec.get_probe().name == "ProbeA"  # D27: never an empty probe name downstream
        lfp = si.load(job.recording_lfp_dict, base_folder=tmp_path / "data")
        assert lfp.get_probe().name == "ProbeA"


def test_empty_probe_name_fixed_in_aind_from_settings(tmp_path, monkeypatch):
    data = tmp_path / "data"
    name = "ecephys_444_2024-01-01_10-00-00"
    session = sd.write_aind_session(data, name, experiments={1: (0.02,), 2: (0.02,)})
    clipped = session / "ecephys" / "ecephys_clipped"
    stream = f"Record Node 101#{OE_AP_FOLDER}"
    zarr_path = session / "ecephys" / "ecephys_compressed" / f"experiment1_{stream}.zarr"
    # The compressed copy of experiment1 carries a probe whose name is empty (as old compressions did).
    import shutil

    import spikeinterface.extractors as se

    recording = se.read_openephys(clipped, stream_name=stream, block_index=0)
    probe = recording.get_probe()
    probe.name = ""
    recording.set_probe(probe, group_mode="by_shank" if probe.shank_ids is not None else "by_probe")
    shutil.rmtree(zarr_path)
    recording.save(format="zarr", folder=zarr_path, n_jobs=1, verbose=False)
    assert si.read_zarr(zarr_path).get_probe().name == ""

    result = discover_jobs(data, params_from_mapping({"input": "aind"}))
    fixed, intact = result.jobs
    assert fixed.recording_name.startswith("experiment1_") and intact.recording_name.startswith(
        "experiment2_"
    )
    assert len(fixed.recording_dict["annotations"]) > len(intact.recording_dict["annotations"])
    assert set(intact.recording_dict["annotations"]) <= MAIN_ANNOTATIONS
    monkeypatch.chdir(tmp_path)
    for job, experiment in ((fixed, 1), (intact, 2)):
        rec = _check_oe_job(
            job, data, clipped / "Record Node 101" / f"experiment{experiment}" / "recording1", OE_AP_FOLDER
        )
        assert rec.get_probe().name == "ProbeA"


def test_streams_without_node_prefix_and_probe_fix(tmp_path, monkeypatch):
    """D25: the session folder is the record node itself, so neo's stream names carry no ``Record Node #``."""
    data = tmp_path / "data"
    node = data / "oe_node"
    sd.write_openephys_record_node(node, sd.OE_NP2_OEBIN, sd.OE_NP2_NODE / "settings.xml", {1: (0.02,)})
    _blank_probe_name(node / "settings.xml")
    result = discover_jobs(data, params_from_mapping({"input": "openephys"}))
    (job,) = result.jobs
    assert job.recording_name == f"experiment1_{OE_AP_FOLDER}_recording1"
    assert "#" not in job.recording_name and "experiment_name" in job.recording_dict["annotations"]
    monkeypatch.chdir(tmp_path)
    rec = _check_oe_job(job, data, node / "experiment1" / "recording1", OE_AP_FOLDER)
    assert rec.get_probe().name == "ProbeA"


# --------------------------------------------------------------------------------------------------- D23


@pytest.fixture(scope="module")
def two_node_root(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("two_nodes") / "data"
    session = data / "oe_two_nodes"
    for seed, node in ((0, "Record Node 102"), (50, "Record Node 101")):
        sd.write_openephys_record_node(
            session / node,
            sd.OE_NP2_OEBIN,
            sd.OE_NP2_NODE / "settings.xml",
            {1: (0.02,)},
            seed=seed,
            keep_folders=[OE_AP_FOLDER],
        )
    return data


@pytest.mark.parametrize(
    ("record_nodes", "expected_nodes"),
    [
        (None, ["Record Node 101"]),
        ("all", ["Record Node 101", "Record Node 102"]),
        (["Record Node 102"], ["Record Node 102"]),
    ],
)
def test_several_record_nodes(two_node_root, record_nodes, expected_nodes, tmp_path, monkeypatch):
    params = {"input": "openephys", **({"record_nodes": record_nodes} if record_nodes else {})}
    result = discover_jobs(two_node_root, params_from_mapping(params))
    nodes = [job.recording_name.split("_", 1)[1].split("#")[0] for job in result.jobs]
    assert sorted(nodes) == expected_nodes
    monkeypatch.chdir(tmp_path)
    for job, node in zip(result.jobs, nodes, strict=True):
        rec_folder = two_node_root / "oe_two_nodes" / node / "experiment1" / "recording1"
        _check_oe_job(job, two_node_root, rec_folder, OE_AP_FOLDER)  # traces of THAT node's files


# -------------------------------------------------------------------------------------------- Rhythm rule


def _rhythm_oebin(path: Path, with_probe: bool) -> Path:
    structure = json.loads(sd.OE_NP2_OEBIN.read_text())
    ap = next(s for s in structure["continuous"] if s["folder_name"].rstrip("/") == OE_AP_FOLDER)
    template = next(s for s in structure["continuous"] if s["folder_name"].startswith("NI-DAQ"))
    rhythm = {
        **template,
        "folder_name": "Acquisition_Board-100.Rhythm Data/",
        "source_processor_name": "Acquisition Board",
        "source_processor_id": 100,
        "stream_name": "Rhythm Data",
        "num_channels": 8,
        "channels": [{**template["channels"][0], "channel_name": f"CH{i + 1}"} for i in range(8)],
    }
    structure["continuous"] = [ap, rhythm] if with_probe else [rhythm]
    path.write_text(json.dumps(structure))
    return path


def test_rhythm_kept_in_openephys_dropped_in_aind(tmp_path, monkeypatch):
    # minimal: a Rhythm stream only, no settings.xml
    minimal = tmp_path / "minimal"
    node = minimal / "oe_rhythm" / "Record Node 101"
    oebin = _rhythm_oebin(tmp_path / "rhythm_only.oebin", with_probe=False)
    sd.write_openephys_record_node(node, oebin, sd.OE_NP2_NODE / "settings.xml", {1: (0.02,)})
    (node / "settings.xml").unlink()
    (job,) = discover_jobs(minimal, params_from_mapping({"input": "openephys"})).jobs
    assert job.recording_name == "experiment1_Record Node 101#Acquisition_Board-100.Rhythm Data_recording1"
    monkeypatch.chdir(tmp_path)
    rec = _check_oe_job(
        job, minimal, node / "experiment1" / "recording1", "Acquisition_Board-100.Rhythm Data"
    )
    assert rec.get_num_channels() == json.loads(oebin.read_text())["continuous"][0]["num_channels"]

    # probe + Rhythm, same tree as openephys session and as an uncompressed aind session
    mixed_oebin = _rhythm_oebin(tmp_path / "mixed.oebin", with_probe=True)
    oe_data, aind_data = tmp_path / "oe", tmp_path / "aind"
    for node_folder in (
        oe_data / "oe_mixed" / "Record Node 101",
        aind_data / "ecephys_555_2024-01-01_10-00-00" / "ecephys" / "Record Node 101",
    ):
        sd.write_openephys_record_node(
            node_folder, mixed_oebin, sd.OE_NP2_NODE / "settings.xml", {1: (0.02,)}
        )
    oe_names = [
        j.recording_name for j in discover_jobs(oe_data, params_from_mapping({"input": "openephys"})).jobs
    ]
    assert sorted(oe_names) == sorted(
        f"experiment1_Record Node 101#{s}_recording1"
        for s in (OE_AP_FOLDER, "Acquisition_Board-100.Rhythm Data")
    )
    aind = discover_jobs(aind_data, params_from_mapping({"input": "aind"}))
    assert [j.recording_name for j in aind.jobs] == [f"experiment1_Record Node 101#{OE_AP_FOLDER}_recording1"]
    assert any("Rhythm" in d for d in aind.log.dropped_streams)


# ------------------------------------------------------------------------------------ probe_paths as a dict


def test_probe_paths_dict_is_looked_up_per_stream(tmp_path, monkeypatch):
    import probeinterface as pi

    folder = sd.write_spikeglx_session(
        tmp_path, run="pp", durations_s=(0.02,), with_nidq=False, with_lf=False
    )
    probe = pi.read_spikeglx(next(folder.glob("*.imec0.ap.meta")))
    n_contacts = probe.get_contact_count()
    halves = np.repeat([0, 1], [n_contacts // 2, n_contacts - n_contacts // 2])
    probe.set_shank_ids(halves.astype(str))
    probe.set_device_channel_indices(np.arange(n_contacts))
    probe_dir = tmp_path / "probes"
    probe_dir.mkdir()
    pi.write_probeinterface(probe_dir / "imec0_two_halves.json", probe)
    info = {
        "reader_type": "spikeglx",
        "reader_kwargs": {"folder_path": "pp_g0"},
        "skip_stream_substrings": ["SYNC"],
        "probe_paths": {"imec0.ap": "probes/imec0_two_halves.json"},
    }
    result = discover_jobs(
        tmp_path, params_from_mapping({"input": "spikeinterface", "spikeinterface_info": info})
    )
    by_name = {j.recording_name: j for j in result.jobs}
    # imec0 follows the probe file (2 halves); imec1 has no entry and keeps the probe from its meta (4 shanks)
    meta_shanks = Counter(
        e.strip("()").split(":")[0]
        for e in dict(
            line.split("=", 1) for line in next(folder.glob("*.imec1.ap.meta")).read_text().splitlines()
        )["~snsShankMap"].split(")(")[1:]
    )
    assert sorted(by_name) == sorted(
        [f"block0_imec0.ap_recording1_group{g}" for g in range(2)]
        + [f"block0_imec1.ap_recording1_group{g}" for g in range(len(meta_shanks))]
    )
    monkeypatch.chdir(tmp_path / "probes")
    for g in range(2):
        job = by_name[f"block0_imec0.ap_recording1_group{g}"]
        rec = si.load(job.recording_dict, base_folder=tmp_path)
        assert rec.get_num_channels() == int(np.sum(halves == g))
        expected_positions = probe.contact_positions[halves == g]
        np.testing.assert_array_equal(rec.get_channel_locations(), expected_positions)


# ----------------------------------------------------------------------------------- other shipped metadata


def _meta(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _channels_per_shank(meta: dict[str, str]) -> Counter:
    """Saved AP channels per shank from ``~snsShankMap`` or ``~snsGeomMap`` (first field of each entry)."""
    n_ap = int(meta["snsApLfSy"].split(",")[0])
    table = meta.get("~snsShankMap") or meta["~snsGeomMap"]
    entries = table.split(")(")[1:]
    return Counter(int(e.strip("()").split(":")[0]) for e in entries[:n_ap])


@pytest.mark.parametrize(
    "meta_name",
    ["NP2_2013_all_channels.imec0.ap.meta", "NP-Ultra.meta", "NP2020_sample_g0_t0.imec0.ap.meta"],
)
def test_shipped_spikeglx_metas(meta_name, tmp_path, monkeypatch):
    data = tmp_path / "data"
    folder = sd.write_spikeglx_single_probe(data, "run", meta_name, duration_s=0.01)
    meta_path = next(folder.glob("*.ap.meta"))
    meta = _meta(meta_path)
    per_shank = _channels_per_shank(meta)
    n_saved = int(meta["nSavedChans"])
    n_samples = Path(meta["fileName"]).stat().st_size // (2 * n_saved)
    result = discover_jobs(data, params_from_mapping({"input": "spikeglx"}))
    expected_names = (
        [f"block0_imec0.ap_recording1_group{s}" for s in sorted(per_shank)]
        if len(per_shank) > 1
        else ["block0_imec0.ap_recording1"]
    )
    assert [j.recording_name for j in result.jobs] == expected_names
    monkeypatch.chdir(tmp_path)
    raw = np.fromfile(meta["fileName"], dtype=np.int16).reshape(-1, n_saved)
    for job, shank in zip(result.jobs, sorted(per_shank), strict=True):
        rec = si.load(job.recording_dict, base_folder=data)
        assert rec.get_num_channels() == per_shank[shank]
        assert rec.get_sampling_frequency() == float(meta["imSampRate"])
        assert rec.get_num_segments() == 1 and rec.get_num_samples(segment_index=0) == n_samples
        columns = [int(c.split("#AP")[1]) for c in rec.get_channel_ids()]
        np.testing.assert_array_equal(rec.get_traces(return_in_uV=False), raw[:, columns])


def test_np1110_meta_is_a_clear_error(tmp_path):
    """neo 0.14.6 cannot parse the NP1110 ``imroTbl``: one error naming the session, no crash."""
    folder = sd.write_spikeglx_single_probe(tmp_path, "np1110", "NP1110_bank0_g0_t0.imec0.ap.meta", 0.01)
    with pytest.raises(DispatchError, match="cannot list SpikeGLX streams") as info:
        discover_jobs(tmp_path, params_from_mapping({"input": "spikeglx"}))
    assert info.value.path == str(folder)


def test_shipped_openephys_np1_wideband_tree(tmp_path, monkeypatch):
    data = tmp_path / "data"
    node = data / "oe_np1" / "Record Node 101"
    sd.write_openephys_record_node(node, OE_NP1_OEBIN, OE_NP1_NODE / "settings.xml", {1: (0.02,)})
    stream = _oebin_stream(node / "experiment1" / "recording1", "Neuropix-PXI-100.ProbeA")
    result = discover_jobs(data, params_from_mapping({"input": "openephys"}))
    assert all(j.recording_lfp_dict is None for j in result.jobs)  # wideband: no LFP partner
    monkeypatch.chdir(tmp_path)
    total = 0
    for job in result.jobs:
        assert job.recording_name.startswith("experiment1_Record Node 101#Neuropix-PXI-100.ProbeA_recording1")
        rec = _check_oe_job(job, data, node / "experiment1" / "recording1", "Neuropix-PXI-100.ProbeA")
        total += rec.get_num_channels()
        assert rec.get_sampling_frequency() == stream["sample_rate"]
    assert total == stream["num_channels"]


def test_shipped_openephys_multi_probe_settings(tmp_path, monkeypatch):
    """``OE_Neuropix-PXI-multi-probe/settings.xml`` (four probes, only settings shipped): one AP stream per probe,
    written with as many channels as that probe has contacts; every job gets its own probe by stream name."""
    import probeinterface as pi

    settings = sd.OPENEPHYS_META / "OE_Neuropix-PXI-multi-probe" / "settings.xml"
    template = json.loads(sd.OE_NP2_OEBIN.read_text())
    ap = next(s for s in template["continuous"] if s["folder_name"].rstrip("/") == OE_AP_FOLDER)
    contacts = {}
    streams = []
    for probe_name in ("ProbeA", "ProbeB", "ProbeC", "ProbeD"):
        folder = f"Neuropix-PXI-100.{probe_name}-AP"
        n_contacts = pi.read_openephys(settings, stream_name=folder).get_contact_count()
        contacts[folder] = n_contacts
        channels = [{**ap["channels"][0], "channel_name": f"CH{i + 1}"} for i in range(n_contacts)]
        streams.append(
            {
                **ap,
                "folder_name": f"{folder}/",
                "stream_name": f"{probe_name}-AP",
                "num_channels": n_contacts,
                "channels": channels,
            }
        )
    oebin = tmp_path / "multi.oebin"
    oebin.write_text(json.dumps({**template, "continuous": streams}))
    data = tmp_path / "data"
    node = data / "oe_multi" / "Record Node 101"
    sd.write_openephys_record_node(node, oebin, settings, {1: (0.01,)})
    result = discover_jobs(data, params_from_mapping({"input": "openephys", "split_groups": False}))
    assert sorted(j.recording_name for j in result.jobs) == sorted(
        f"experiment1_Record Node 101#{folder}_recording1" for folder in contacts
    )
    monkeypatch.chdir(tmp_path)
    for job in result.jobs:
        folder = job.recording_name.split("#")[1].rsplit("_", 1)[0]
        rec = _check_oe_job(job, data, node / "experiment1" / "recording1", folder)
        assert rec.get_num_channels() == contacts[folder]
        assert rec.get_probe().name == folder.split(".")[1][: -len("-AP")]


def test_missing_settings_xml_warns_that_jobs_have_no_probe(tmp_path):
    session = sd.write_openephys_session(tmp_path, "oe_nosettings", {1: (0.02,)})
    for settings in session.rglob("settings*.xml"):
        settings.unlink()
    result = discover_jobs(tmp_path, params_from_mapping({"input": "openephys"}))
    assert result.jobs and all(job.probe_dict is None for job in result.jobs)
    (warning,) = result.log.warnings
    assert "has no probe" in warning and "oe_nosettings" in warning and "settings.xml" in warning
