"""Reliability catalogue: each failure a user can meet gives ONE clear error, and nothing written is lost or
left half-written. Every case goes through a user-facing entry point (CLI or Dagster materialization).

| case                                   | entry point            | test                                   |
|----------------------------------------|------------------------|----------------------------------------|
| empty data folder                      | ephys-dispatch         | test_ephys_bad_input[empty]            |
| two sessions without --multi-session   | ephys-dispatch         | test_ephys_bad_input[two-sessions]     |
| truncated binary                       | ephys-dispatch         | test_ephys_bad_input[truncated-bin]    |
| corrupt .meta / structure.oebin        | ephys-dispatch         | test_ephys_bad_input[corrupt-*]        |
| NWB without electrodes                 | ephys-dispatch         | test_ephys_bad_input[nwb-no-electrodes]|
| unreadable Zarr                        | ephys-dispatch         | test_ephys_bad_input[unreadable-zarr]  |
| missing anatomy file, wrong lead field | nmm_spikes             | test_deepsif_bad_anatomy               |
| Octave missing, signal package missing | nmm_spikes             | test_octave_problems                   |
| partition key with separators or ..    | neuro-partitions, assets | test_unsafe_partition_keys           |
| disk full while writing a clip         | nmm_spikes on a tmpfs  | test_disk_full_while_writing_clips     |
| two runs of the same region at once    | raw_nmm ×2             | test_two_runs_of_one_region_at_once    |
| kill -9 mid-region, then re-run        | deepsif-generate       | test_kill_9_mid_region_then_rerun      |
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import scipy.io

from deepsif_assets.assets import nmm_spikes, raw_nmm
from deepsif_assets.extraction import ExtractionState, extraction_status
from deepsif_assets.layout import RegionLayout
from ephys_assets import sample_data as sd
from ephys_assets.assets import ephys_job
from ephys_assets.cli import main as ephys_dispatch
from resources.deepsif_paths import DeepsifPaths
from resources.ephys_paths import EphysPaths
from resources.octave import OctaveResource
from tests.support.region_fixtures import make_anatomy, snapshot, write_region_raw
from tests.support.small_filesystem import small_filesystem

BIN = Path(sys.executable).parent
REGION = 5
SHORT_SIMULATION = {"segment_ms": 1500.0, "n_segments": 2, "transient_samples": 200}


# ---------------------------------------------------------------------------------------------------------------
# ephys: bad sessions through the CLI; an earlier result in the results folder must survive untouched
# ---------------------------------------------------------------------------------------------------------------
def _two_sessions(data: Path) -> Path:
    for run in ("a", "b"):
        sd.write_spikeglx_session(data, run=run, durations_s=(0.02,), with_np2=False, with_nidq=False)
    return data


def _truncated_bin(data: Path) -> Path:
    folder = sd.write_spikeglx_session(data, run="t", durations_s=(0.02,), with_np2=False, with_nidq=False)
    bin_path = next(folder.glob("*.imec0.ap.bin"))
    bin_path.write_bytes(bin_path.read_bytes()[: -770 * 3])
    return bin_path


def _corrupt_meta(data: Path) -> Path:
    folder = sd.write_spikeglx_session(data, run="c", durations_s=(0.02,), with_np2=False, with_nidq=False)
    meta = next(folder.glob("*.imec0.ap.meta"))
    meta.write_bytes(b"\xff\xfe garbage without keys")
    return meta


def _corrupt_oebin(data: Path) -> Path:
    folder = sd.write_openephys_session(data, "oe", {1: (0.02,)})
    oebin = next(folder.rglob("structure.oebin"))
    oebin.write_text('{"continuous": [ {"folder_name": ')
    return oebin


def _nwb_without_electrodes(data: Path) -> Path:
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwbfile = NWBFile("no electrodes", "x", datetime(2024, 1, 1, tzinfo=UTC))
    nwbfile.add_acquisition(TimeSeries(name="ts", data=np.zeros((10, 2)), unit="V", rate=30000.0))
    data.mkdir(parents=True)
    path = data / "bad.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def _unreadable_zarr(data: Path) -> Path:
    session = sd.write_aind_session(data, experiments={1: (0.05,)})
    bad = next(session.rglob("*ProbeA-AP.zarr"))
    for meta_file in [*bad.rglob(".z*"), *bad.rglob("zarr.json")]:
        meta_file.write_text("not json")
    return bad


EPHYS_CASES = {
    "empty": ("spikeglx", lambda data: data.mkdir() or data, "No valid SpikeGLX folder found"),
    "two-sessions": ("spikeglx", _two_sessions, "Multiple SpikeGLX sessions"),
    "truncated-bin": ("spikeglx", _truncated_bin, "truncated SpikeGLX .bin"),
    "corrupt-meta": ("spikeglx", _corrupt_meta, "corrupt SpikeGLX .meta"),
    "corrupt-oebin": ("openephys", _corrupt_oebin, "corrupt structure.oebin"),
    "nwb-no-electrodes": ("nwb", _nwb_without_electrodes, "bad.nwb"),
    "unreadable-zarr": ("aind", _unreadable_zarr, "unreadable Zarr"),
}


@pytest.mark.parametrize("case", sorted(EPHYS_CASES))
def test_ephys_bad_input(case, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    input_format, build, message = EPHYS_CASES[case]
    data = tmp_path / "data"
    named = build(data)
    results = tmp_path / "results"
    results.mkdir()
    earlier = results / "job_0.json"
    earlier.write_text('{"from": "an earlier dispatch"}')

    code = ephys_dispatch(["--input", input_format, "--data-dir", str(data), "--results-dir", str(results)])

    err = capsys.readouterr().err
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("ephys-dispatch: error:")]
    assert len(error_lines) == 1, err
    assert message in error_lines[0]
    assert str(named) in error_lines[0], "the error names the offending path"
    assert sorted(p.name for p in results.iterdir()) == ["job_0.json"]
    assert earlier.read_text() == '{"from": "an earlier dispatch"}'


# ---------------------------------------------------------------------------------------------------------------
# DeepSIF: anatomy, Octave, disk, concurrency, kill -9
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _materialize(instance, assets, anatomy, source, key, octave=None, config=None):
    instance.add_dynamic_partitions("regions", [key])
    return dg.materialize(
        assets,
        instance=instance,
        partition_key=key,
        resources={
            "deepsif_paths": DeepsifPaths(anatomy_dir=str(anatomy), source_dir=str(source)),
            "octave": octave or OctaveResource(),
        },
        run_config=dg.RunConfig(ops=config or {}),
        raise_on_error=False,
    )


def _failure(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1, "exactly one failed step"
    return failures[0].step_failure_data.error.to_string()


def _assert_raw_kept_and_nothing_extracted(source: Path) -> None:
    layout = RegionLayout(source, REGION)
    assert (layout.raw_dir / "_complete.json").is_file(), "raw data is kept for debugging"
    assert extraction_status(layout, [0, 1, 2]).state is ExtractionState.EMPTY
    assert not list(source.rglob(".partial_*")), "no half-written file is left"


@pytest.mark.parametrize("problem", ["missing-leadfield", "wrong-leadfield-shape"])
def test_deepsif_bad_anatomy(problem, instance, tmp_path):
    anatomy = make_anatomy(tmp_path / "anatomy")
    source = tmp_path / "source"
    write_region_raw(source, REGION)
    leadfield = anatomy / "leadfield_75_20k.mat"
    if problem == "missing-leadfield":
        leadfield.unlink()
        expected = f"{leadfield} is missing"
    else:
        scipy.io.savemat(leadfield, {"fwd": np.ones((75, 10))})
        expected = "(75, 10)"
    result = _materialize(instance, [nmm_spikes], anatomy, source, str(REGION))
    assert not result.success
    assert expected in _failure(result)
    _assert_raw_kept_and_nothing_extracted(source)


@pytest.fixture
def octave_without_signal(tmp_path) -> Path:
    """An Octave whose package lists are empty, as on a machine without octave-signal."""
    home = tmp_path / "octave-home"
    home.mkdir()
    (home / ".octaverc").write_text(
        f"pkg('global_list', '{home / 'none_g'}'); pkg('local_list', '{home / 'none_l'}');\n"
    )
    wrapper = tmp_path / "octave-without-signal"
    wrapper.write_text(f'#!/bin/sh\nHOME="{home}" exec {shutil.which("octave-cli")} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.parametrize("problem", ["octave-missing", "signal-missing"])
def test_octave_problems(problem, instance, tmp_path, request):
    anatomy = make_anatomy(tmp_path / "anatomy")
    source = tmp_path / "source"
    write_region_raw(source, REGION)
    if problem == "octave-missing":
        octave = OctaveResource(executable="no-such-octave")
        expected = "octave executable 'no-such-octave' not found on PATH"
    else:
        octave = OctaveResource(executable=str(request.getfixturevalue("octave_without_signal")))
        expected = "'signal' package is missing"
    result = _materialize(instance, [nmm_spikes], anatomy, source, str(REGION), octave=octave)
    assert not result.success
    text = _failure(result)
    assert expected in text
    if problem == "signal-missing":
        assert "package signal is not installed" in text, "Octave's own output is attached"
    _assert_raw_kept_and_nothing_extracted(source)
    assert (RegionLayout(source, REGION).raw_dir / "_extraction_failed.json").is_file()


@pytest.mark.parametrize("key", ["../evil", "a/b", "..", "7/../../x"])
def test_unsafe_partition_keys(key, instance, tmp_path):
    """Rejected by the CLI, and by the assets even if a key reached the instance another way."""
    cli = subprocess.run(
        [str(BIN / "neuro-partitions"), "add", "recordings", key],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 2 and "recordings key" in cli.stderr
    source = tmp_path / "root" / "source"
    result = _materialize(
        instance,
        [raw_nmm],
        make_anatomy(tmp_path / "anatomy"),
        source,
        key,
        config={"raw_nmm": {"config": SHORT_SIMULATION}},
    )
    assert not result.success
    assert "regions key" in _failure(result)
    data = tmp_path / "root" / "data"
    data.mkdir(parents=True)
    instance.add_dynamic_partitions("recordings", [key])
    result = dg.materialize(
        [ephys_job],
        instance=instance,
        partition_key=key,
        resources={
            "ephys_paths": EphysPaths(data_root=str(data), results_root=str(tmp_path / "root" / "res"))
        },
        raise_on_error=False,
    )
    assert not result.success
    assert "recordings key" in _failure(result)
    # Nothing was created beside the roots: the CLI refused before touching an instance.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anatomy", "root"]


def test_disk_full_while_writing_clips(instance, tmp_path):
    anatomy = make_anatomy(tmp_path / "anatomy")
    reference_source = tmp_path / "reference"
    raw = write_region_raw(reference_source, REGION)
    assert raw.total >= 3, "the fixture must produce several clips"
    pristine = tmp_path / "pristine"
    shutil.copytree(reference_source, pristine)
    result = _materialize(instance, [nmm_spikes], anatomy, reference_source, str(REGION))
    assert result.success
    expected = snapshot(RegionLayout(reference_source, REGION).clip_root)

    raw_bytes = sum(p.stat().st_size for p in pristine.rglob("*") if p.is_file())
    one_clip = max(
        p.stat().st_size for p in RegionLayout(reference_source, REGION).clip_dir.glob("nmm_*.mat")
    )
    with small_filesystem(tmp_path / "tiny", raw_bytes + int(1.5 * one_clip) + 64 * 1024) as tiny:
        source = tiny / "source"
        shutil.copytree(pristine, source)
        full = _materialize(instance, [nmm_spikes], anatomy, source, str(REGION))
        assert not full.success
        assert "nmm_" in _failure(full) or "No space" in _failure(full)
        layout = RegionLayout(source, REGION)
        assert (layout.raw_dir / "_complete.json").is_file(), "raw data survives the failed extraction"
        for clip in layout.clip_dir.glob("nmm_*.mat"):  # whatever was written is whole, never truncated
            assert scipy.io.loadmat(clip)["data"].shape == (500, 994)
        assert not list(source.rglob(".partial_*")), "the half-written clip was removed"
        moved = tmp_path / "after"
        shutil.copytree(source, moved)
    again = _materialize(instance, [nmm_spikes], anatomy, moved, str(REGION))
    assert again.success
    assert snapshot(RegionLayout(moved, REGION).clip_root).keys() == expected.keys()
    got = snapshot(RegionLayout(moved, REGION).clip_root)
    assert all(np.array_equal(got[k], expected[k]) for k in expected)


def _materialize_in_subprocess(
    anatomy: Path, source: Path, home: Path, key: str, config: dict
) -> subprocess.Popen:
    script = f"""
import dagster as dg
from deepsif_assets.assets import raw_nmm
from resources.deepsif_paths import DeepsifPaths
with dg.DagsterInstance.get() as instance:
    instance.add_dynamic_partitions("regions", [{key!r}])
    dg.materialize([raw_nmm], instance=instance, partition_key={key!r},
        resources={{"deepsif_paths": DeepsifPaths(anatomy_dir={str(anatomy)!r}, source_dir={str(source)!r})}},
        run_config=dg.RunConfig(ops={{"raw_nmm": {{"config": {config!r}}}}}))
"""
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        cwd=Path(__file__).parents[1],
    )


def test_two_runs_of_one_region_at_once(tmp_path):
    anatomy = make_anatomy(tmp_path / "anatomy")
    source = tmp_path / "source"
    home = tmp_path / "home"
    home.mkdir()
    config = {"segment_ms": 4000.0, "n_segments": 2, "transient_samples": 200}
    first = _materialize_in_subprocess(anatomy, source, home, str(REGION), config)
    layout = RegionLayout(source, REGION)
    deadline = time.monotonic() + 120
    while not (layout.lock_path.is_file() and "pid" in layout.lock_path.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took the region"
        time.sleep(0.05)
    with dg.instance_for_test() as other:
        second = _materialize(
            other, [raw_nmm], anatomy, source, str(REGION), config={"raw_nmm": {"config": config}}
        )
    assert not second.success
    assert "being processed by another run" in _failure(second)
    assert first.wait(timeout=300) == 0, "the first run is not disturbed"

    reference = tmp_path / "reference"
    with dg.instance_for_test() as clean:
        assert _materialize(
            clean, [raw_nmm], anatomy, reference, str(REGION), config={"raw_nmm": {"config": config}}
        ).success
    for ds in sorted(RegionLayout(reference, REGION).raw_dir.glob("*_ds.mat")):
        got = scipy.io.loadmat(layout.raw_dir / ds.name)["all_data"]
        assert np.array_equal(got, scipy.io.loadmat(ds)["all_data"]), ds.name


def _generate(home: Path, anatomy: Path, source: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(BIN / "deepsif-generate"),
            "--start_region",
            "1",
            "--end_region",
            "2",
            "--anatomy-dir",
            str(anatomy),
            "--source-dir",
            str(source),
            "--segments",
            "2",
            "--segment-ms",
            "5000",
            "--no-synthetic-source",
        ],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_group_when(process: subprocess.Popen, ready, what: str) -> None:
    deadline = time.monotonic() + 300
    while not ready():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_kill_9_mid_region_then_rerun(tmp_path):
    anatomy = make_anatomy(tmp_path / "anatomy")
    reference = tmp_path / "reference"
    assert _generate(tmp_path / "home-ref", anatomy, reference).wait(timeout=600) == 0
    expected = snapshot(RegionLayout(reference, 1).clip_root)
    assert sum(k.startswith("a1/nmm_") for k in expected) >= 2, "the short configuration must yield clips"

    source = tmp_path / "source"
    home = tmp_path / "home"
    layout = RegionLayout(source, 1)
    # 1) killed during the simulation (its raw files are being written)
    run = _generate(home, anatomy, source)
    _kill_group_when(run, lambda: any(layout.raw_dir.glob(".mean_iter_0_*_ds.mat.*.tmp")), "the simulation")
    assert not (layout.raw_dir / "_complete.json").exists()
    assert not any(layout.raw_dir.glob("mean_iter_*_ds.mat")), "no raw file is published half-written"
    # 2) re-run, killed during the extraction (Octave has written a first clip or marker)
    run = _generate(home, anatomy, source)
    _kill_group_when(
        run,
        lambda: layout.clip_root.exists() and any(layout.clip_root.rglob("*.mat")),
        "the extraction",
    )
    # 3) a plain re-run finishes the region with exactly the uninterrupted clips
    assert _generate(home, anatomy, source).wait(timeout=600) == 0
    got = snapshot(layout.clip_root)
    assert got.keys() == expected.keys()
    assert all(np.array_equal(got[k], expected[k]) for k in expected)
    assert not layout.raw_dir.exists(), "raw data cleaned up after the successful re-run"
    leftovers = [p for p in source.rglob("*") if p.name.startswith(".partial_") or p.suffix == ".tmp"]
    assert not leftovers
