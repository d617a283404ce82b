"""Bad input: one clear DispatchError naming the path, and nothing written to the results folder."""

import json

import pytest

from ephys_assets import sample_data as sd
from ephys_assets.dispatch import DispatchError, discover_jobs, params_from_mapping


def _dispatch(data, fmt, **extra):
    return discover_jobs(data, params_from_mapping({"input": fmt, **extra}))


def test_empty_data_folder(tmp_path):
    for fmt, message in [
        ("spikeglx", "No valid SpikeGLX folder found."),
        ("openephys", "No valid Open Ephys folder found."),
    ]:
        with pytest.raises(DispatchError, match=message) as info:
            _dispatch(tmp_path, fmt)
        assert info.value.path == str(tmp_path)


def test_missing_data_folder(tmp_path):
    with pytest.raises(DispatchError, match="does not exist"):
        _dispatch(tmp_path / "nope", "spikeglx")


def test_several_sessions_without_multi_session(tmp_path):
    for run in ("a", "b"):
        sd.write_spikeglx_session(
            tmp_path, run=run, durations_s=(0.02,), with_np2=False, with_nidq=False, with_lf=False
        )
    with pytest.raises(DispatchError, match="Multiple SpikeGLX sessions found in the data folder"):
        _dispatch(tmp_path, "spikeglx")


def test_truncated_spikeglx_bin(tmp_path):
    folder = sd.write_spikeglx_session(
        tmp_path, run="t", durations_s=(0.02,), with_np2=False, with_nidq=False
    )
    bin_path = next(folder.glob("*.imec0.ap.bin"))
    data = bin_path.read_bytes()
    bin_path.write_bytes(data[: len(data) - 770 * 3])  # whole frames missing: size disagrees with the .meta
    with pytest.raises(DispatchError, match=r"truncated SpikeGLX \.bin") as info:
        _dispatch(tmp_path, "spikeglx")
    assert info.value.path == str(bin_path)


def test_corrupt_spikeglx_meta(tmp_path):
    folder = sd.write_spikeglx_session(
        tmp_path, run="c", durations_s=(0.02,), with_np2=False, with_nidq=False
    )
    meta = next(folder.glob("*.imec0.ap.meta"))
    meta.write_bytes(b"\xff\xfe garbage without keys")
    with pytest.raises(DispatchError, match=r"corrupt SpikeGLX \.meta") as info:
        _dispatch(tmp_path, "spikeglx")
    assert info.value.path == str(meta)


def test_truncated_openephys_dat(tmp_path):
    folder = sd.write_openephys_session(tmp_path, "oe", {1: (0.02,)})
    dat = next(folder.rglob("Neuropix-PXI-100.ProbeA-AP/continuous.dat"))
    dat.write_bytes(dat.read_bytes()[: -385 * 2 * 5])
    with pytest.raises(DispatchError, match=r"truncated continuous\.dat") as info:
        _dispatch(tmp_path, "openephys")
    assert info.value.path == str(dat)


def test_corrupt_structure_oebin(tmp_path):
    folder = sd.write_openephys_session(tmp_path, "oe", {1: (0.02,)})
    oebin = next(folder.rglob("structure.oebin"))
    oebin.write_text('{"continuous": [ {"folder_name": ')
    with pytest.raises(DispatchError, match=r"corrupt structure\.oebin") as info:
        _dispatch(tmp_path, "openephys")
    assert info.value.path == str(oebin)


def test_unreadable_stream_names_the_session(tmp_path):
    folder = sd.write_openephys_session(tmp_path, "oe", {1: (0.02,)})
    oebin = next(folder.rglob("structure.oebin"))
    structure = json.loads(oebin.read_text())
    structure["continuous"][0]["sample_rate"] = "fast"
    oebin.write_text(json.dumps(structure))
    with pytest.raises(DispatchError, match="Open Ephys") as info:
        _dispatch(tmp_path, "openephys")
    assert str(folder) in info.value.path or str(oebin) in info.value.path


def test_cli_leaves_no_partial_results(tmp_path, monkeypatch):
    from ephys_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    sd.write_spikeglx_session(data, run="good", durations_s=(0.02,), with_np2=False, with_nidq=False)
    broken = sd.write_spikeglx_session(
        data, run="zbroken", durations_s=(0.02,), with_np2=False, with_nidq=False
    )
    bin_path = next(broken.glob("*.ap.bin"))
    bin_path.write_bytes(bin_path.read_bytes()[:-7])
    results = tmp_path / "results"
    code = main(
        ["--input", "spikeglx", "--multi-session", "--data-dir", str(data), "--results-dir", str(results)]
    )
    assert code != 0
    assert not results.exists() or not any(results.iterdir())
