"""simulate_region: file layouts, compact = decimated/remapped original, completion marker, crash recovery, errors."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from deepsif_assets.simulation import (
    COMPLETE_MARKER,
    FS_TO_TVB,
    ConnectivityError,
    SimulationParams,
    SimulationParamsError,
    excitable_tvb_node,
    is_complete,
    simulate_region,
    simulate_regions,
)
from deepsif_assets.simulation.engine import PARITY_ATOL, PARITY_RTOL
from deepsif_assets.simulation.region import _CompactFiles
from tests.support.small_filesystem import small_filesystem

SHORT = dict(segment_ms=250.0, n_segments=2, iterations=(0, 2), transient_samples=101, downsample_factor=4)
REGION = 7  # one of the four remapped regions: fs 7 <-> TVB node 994


@pytest.fixture(scope="module")
def both_formats(connectivity_998, tmp_path_factory):
    params = SimulationParams(**SHORT)
    root = tmp_path_factory.mktemp("region")
    events: list[tuple[int, int, float]] = []
    original = simulate_region(
        connectivity_998,
        REGION,
        params,
        root / "original",
        raw_format="original",
        progress=lambda m, k, pct: events.append((m, k, pct)),
    )
    compact = simulate_region(connectivity_998, REGION, params, root / "compact", raw_format="compact")
    return params, original, compact, events


def _load(path: Path) -> dict:
    return scipy.io.loadmat(path)


def test_original_layout(both_formats):
    params, original, _, _ = both_formats
    out_dir = Path(original.out_dir)
    steps = params.steps_per_segment
    names = sorted(p.name for p in out_dir.iterdir())
    expected = sorted(
        [f"mean_iter_{m}_a_iter_{REGION}_{k}.mat" for m in params.iterations for k in range(2)]
        + [COMPLETE_MARKER]
    )
    assert names == expected
    for m in params.iterations:
        for k in range(params.n_segments):
            mat = _load(out_dir / f"mean_iter_{m}_a_iter_{REGION}_{k}.mat")
            assert {"time", "data", "A"} <= set(mat)
            assert mat["data"].dtype == np.float32 and mat["data"].shape == (steps, 998)
            assert mat["time"].dtype == np.float64 and mat["time"].shape == (1, steps)
            assert mat["A"].dtype == np.float64 and mat["A"].shape == (1, 998)
            # time continues across segments: first segment dt .. segment_ms
            expected_time = (k * steps + np.arange(1, steps + 1)) * params.dt
            assert np.array_equal(mat["time"][0], expected_time)
            a = mat["A"][0]
            assert a[FS_TO_TVB[REGION]] == params.a_excitable == 3.5
            assert np.count_nonzero(a == params.a_base) == 997
    assert original.excitable_tvb_node == 994


def test_compact_equals_independent_decimation_of_original(both_formats):
    params, original, compact, _ = both_formats
    for m in params.iterations:
        segments = [
            _load(Path(original.out_dir) / f"mean_iter_{m}_a_iter_{REGION}_{k}.mat") for k in range(2)
        ]
        data = np.concatenate([s["data"] for s in segments])  # numeric segment order
        times = np.concatenate([s["time"][0] for s in segments])
        # MATLAB: x(1001:end) then downsample(x, 4) keeps rows 1, 5, 9, ...; remap [8,326,922,950] <- [995,998,997,996]
        kept = data[params.transient_samples :][:: params.downsample_factor]
        remapped = kept[:, :994].copy()
        remapped[:, [7, 325, 921, 949]] = kept[:, [994, 997, 996, 995]]
        mat = _load(Path(compact.out_dir) / f"mean_iter_{m}_a_iter_{REGION}_ds.mat")
        assert mat["all_data"].dtype == np.float32 and mat["all_data"].shape == (params.n_decimated, 994)
        assert mat["all_time"].dtype == np.float64 and mat["all_time"].shape == (params.n_decimated, 1)
        assert np.array_equal(mat["all_data"], remapped)
        assert np.array_equal(
            mat["all_time"][:, 0], times[params.transient_samples :][:: params.downsample_factor]
        )
    assert sorted(compact.files) == [f"mean_iter_{m}_a_iter_{REGION}_ds.mat" for m in params.iterations]


def test_complete_marker_and_result_metadata(both_formats):
    params, original, compact, events = both_formats
    for result in (original, compact):
        marker = json.loads((Path(result.out_dir) / COMPLETE_MARKER).read_text())
        assert marker["complete"] is True and marker["region"] == REGION
        assert marker["params"]["segment_ms"] == 250.0 and marker["params"]["iterations"] == [0, 2]
        assert marker["seeds"] == {"0": 42, "2": 42}
        on_disk = {f["name"]: (Path(result.out_dir) / f["name"]).stat().st_size for f in marker["files"]}
        assert on_disk == {f["name"]: f["bytes"] for f in marker["files"]} == result.files
        meta = result.to_metadata()
        json.dumps(meta)  # JSON-able
        assert meta["bytes_written"] == sum(on_disk.values())
        assert meta["excitable_tvb_node"] == 994 and meta["ms_per_step"] > 0
        assert set(meta["peak_abs_after_transient"]) == {"0", "2"}
        assert is_complete(Path(result.out_dir))
    # peak after the transient over the decimated rows, re-derived from the original files
    for m in params.iterations:
        data = np.concatenate(
            [
                _load(Path(original.out_dir) / f"mean_iter_{m}_a_iter_{REGION}_{k}.mat")["data"]
                for k in range(2)
            ]
        )
        kept = data[params.transient_samples :: params.downsample_factor]  # the rows the extraction reads
        assert original.peak_abs_after_transient[m] == float(np.abs(kept).max())
        assert compact.peak_abs_after_transient[m] == original.peak_abs_after_transient[m]
    pcts = [e[2] for e in events]
    assert pcts == sorted(pcts) and pcts[-1] == pytest.approx(100.0)
    assert {(m, k) for m, k, _ in events} == {(m, k) for m in (0, 2) for k in (0, 1)}


def test_faithful_remap_excites_tvb_node_r(connectivity_998, tmp_path):
    params = SimulationParams(**{**SHORT, "iterations": (1,)}, faithful_remap=True)
    assert excitable_tvb_node(REGION, params) == REGION
    assert excitable_tvb_node(8, params) == 8 == excitable_tvb_node(8, SimulationParams())
    result = simulate_region(connectivity_998, REGION, params, tmp_path, raw_format="original")
    a = _load(tmp_path / f"mean_iter_1_a_iter_{REGION}_0.mat")["A"][0]
    assert a[REGION] == 3.5 and a[994] == 3.25
    assert result.excitable_tvb_node == REGION


def test_per_region_seed_policy_records_distinct_seeds(connectivity_998, tmp_path):
    params = SimulationParams(**SHORT, seed_policy="per_region_iteration")
    result = simulate_region(connectivity_998, 3, params, tmp_path)
    assert len(set(result.seeds.values())) == 2 and 42 not in result.seeds.values()
    marker = json.loads((tmp_path / COMPLETE_MARKER).read_text())
    assert marker["seeds"] == {str(k): v for k, v in result.seeds.items()}


def test_crash_recovery_cleans_partial_output_and_redoes(connectivity_998, tmp_path, both_formats):
    params, original, _, _ = both_formats
    out_dir = tmp_path / "a7"
    out_dir.mkdir()

    class Killed(Exception):
        pass

    def die_in_second_segment(m, k, pct):
        if k == 1:
            raise Killed

    # the iterations run as lanes (all advance together): a kill in segment 1 leaves every segment-0 file
    with pytest.raises(Killed):
        simulate_region(
            connectivity_998, REGION, params, out_dir, raw_format="original", progress=die_in_second_segment
        )
    assert not is_complete(out_dir)
    for m in params.iterations:
        assert (out_dir / f"mean_iter_{m}_a_iter_{REGION}_0.mat").exists()  # partial output, no marker
        assert not (out_dir / f"mean_iter_{m}_a_iter_{REGION}_1.mat").exists()
    # debris of a kill -9 in the middle of an atomic write, a stale compact file, and an unrelated file
    (out_dir / f".mean_iter_2_a_iter_{REGION}_1.mat.abc123.tmp").write_bytes(b"half")
    (out_dir / f"mean_iter_2_a_iter_{REGION}_ds.mat").write_bytes(b"corrupt")
    (out_dir / "notes.txt").write_text("keep me")

    simulate_region(connectivity_998, REGION, params, out_dir, raw_format="original")
    assert is_complete(out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [*original.files, COMPLETE_MARKER, "notes.txt"]
    )
    for name in original.files:
        assert np.array_equal(_load(out_dir / name)["data"], _load(Path(original.out_dir) / name)["data"])


def test_compact_files_stream_in_place_and_a_failure_leaves_none(
    connectivity_998, tmp_path, both_formats, monkeypatch
):
    """The compact files are filled while the lanes run (temporary files, allocated at the start): a failure
    half-way removes them, a kill -9's leftovers are removed by the next run, which gives the same bytes also when
    the rows are written in many small pieces that do not line up with the engine's chunks."""
    params, _, compact, _ = both_formats
    out_dir = tmp_path / "a7"
    seen_temporaries: list[list[str]] = []

    def fail_half_way(m, k, pct):
        if pct >= 50:
            seen_temporaries.append(sorted(p.name for p in out_dir.iterdir() if p.name.endswith(".tmp")))
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        simulate_region(connectivity_998, REGION, params, out_dir, progress=fail_half_way)
    assert len(seen_temporaries[0]) == len(params.iterations)  # one file per lane, being filled
    assert [p.name for p in out_dir.iterdir()] == []
    (out_dir / f".mean_iter_0_a_iter_{REGION}_ds.mat.k9k9k9k9.tmp").write_bytes(b"\0" * 4096)  # a kill -9's
    assert params.n_decimated < _CompactFiles.ROWS_PER_WRITE  # the fixture's files: written at once
    # now through many tiles and writes, neither lining up with the engine's chunks
    monkeypatch.setattr(_CompactFiles, "TILE_ROWS", 3)
    monkeypatch.setattr(_CompactFiles, "ROWS_PER_WRITE", 7)
    assert params.n_decimated > 4 * 7
    simulate_region(connectivity_998, REGION, params, out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([*compact.files, COMPLETE_MARKER])
    for name in compact.files:
        assert (out_dir / name).read_bytes() == (Path(compact.out_dir) / name).read_bytes()


def test_a_full_disk_is_one_error_naming_the_raw_file_before_the_simulation(connectivity_998, tmp_path):
    """The compact files are allocated whole before the first step: a disk that cannot hold them is an OSError
    naming the file at once (not a crash half-way), and nothing is left behind."""
    params = SimulationParams(segment_ms=10_000.0, n_segments=2, iterations=(0, 1, 2))  # 3 × 38.8 MB of raw data
    with small_filesystem(tmp_path / "small", 64 * 2**20) as small:
        out_dir = small / "a7"
        started = time.monotonic()
        with pytest.raises(OSError, match=r"No space left on device while writing .*/a7/mean_iter_\d_a_iter_7_ds\.mat"):
            simulate_region(connectivity_998, REGION, params, out_dir)
        assert time.monotonic() - started < 30  # the 120,000 simulated steps were never started
        assert list(out_dir.iterdir()) == []


def test_tvb_engine_through_simulate_region_matches_fast(connectivity_998, tmp_path):
    params = SimulationParams(segment_ms=50.0, n_segments=2, iterations=(1,), transient_samples=10)
    fast = simulate_region(
        connectivity_998, 100, params, tmp_path / "fast", engine="fast", raw_format="original"
    )
    tvb = simulate_region(
        connectivity_998, 100, params, tmp_path / "tvb", engine="tvb", raw_format="original"
    )
    assert tvb.engine == "tvb" and sorted(tvb.files) == sorted(fast.files)
    for name in fast.files:
        a, b = _load(tmp_path / "fast" / name), _load(tmp_path / "tvb" / name)
        assert np.array_equal(a["time"], b["time"]) and np.array_equal(a["A"], b["A"])
        diff = np.abs(a["data"].astype(np.float64) - b["data"])
        assert np.all(diff <= PARITY_RTOL * np.abs(b["data"].astype(np.float64)) + PARITY_ATOL)


def test_simulate_regions_equals_one_region_at_a_time(connectivity_998, tmp_path, both_formats):
    params, _, compact, _ = both_formats
    events: list[tuple[int, float]] = []
    dirs = {REGION: tmp_path / "a7", 300: tmp_path / "a300"}
    results = simulate_regions(
        connectivity_998, [300, REGION], params, dirs, progress=lambda r, pct: events.append((r, pct))
    )
    alone = simulate_region(connectivity_998, 300, params, tmp_path / "alone300")
    assert sorted(results) == [REGION, 300]
    for region, reference in ((REGION, compact), (300, alone)):
        result = results[region]
        assert (
            result.lanes == 4 and reference.lanes == 2 and result.precision == reference.precision == "fast"
        )
        assert list(result.files) == list(reference.files)
        for name in result.files:  # a lane's output does not depend on the batch it ran in
            a, b = _load(dirs[region] / name), _load(Path(reference.out_dir) / name)
            assert np.array_equal(a["all_data"], b["all_data"]) and np.array_equal(
                a["all_time"], b["all_time"]
            )
        marker = json.loads((dirs[region] / COMPLETE_MARKER).read_text())
        assert marker["precision"] == "fast" and marker["lanes"] == 4 and marker["region"] == region
        assert result.peak_abs_after_transient == reference.peak_abs_after_transient
        assert np.array_equal(result.preview_mv, reference.preview_mv)
        pcts = [pct for r, pct in events if r == region]
        assert pcts == sorted(pcts) and pcts[-1] == pytest.approx(100.0) and len(pcts) == len(set(pcts))
    assert not np.array_equal(
        _load(dirs[300] / "mean_iter_0_a_iter_300_ds.mat")["all_data"],
        _load(dirs[REGION] / f"mean_iter_0_a_iter_{REGION}_ds.mat")["all_data"],
    )


def test_faithful_precision_is_recorded(connectivity_998, tmp_path):
    params = SimulationParams(**{**SHORT, "iterations": (1,)})
    result = simulate_region(connectivity_998, 3, params, tmp_path, precision="faithful")
    assert result.precision == "faithful"
    assert json.loads((tmp_path / COMPLETE_MARKER).read_text())["precision"] == "faithful"


# --- bad inputs: one clear error, nothing written -------------------------------------------------------------


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("not_a_zip", "not a readable zip"),
        ("no_weights", "no weights.txt"),
        ("ragged", "cannot parse weights.txt"),
        ("shape", "tract_lengths.txt has shape"),
        ("centres", "centres.txt has 2 lines"),
        ("too_small", "expected ≥ 998"),
    ],
)
def test_bad_connectivity_is_named(tmp_path, case, message):
    path = tmp_path / "conn.zip"
    ok = "0 1\n1 0\n"
    if case == "not_a_zip":
        path.write_bytes(b"PK\x03\x04 definitely not a zip")
    elif case == "no_weights":
        _zip(path, {"tract_lengths.txt": ok, "centres.txt": "a 0 0 0\nb 1 1 1\n"})
    elif case == "ragged":
        _zip(path, {"weights.txt": "0 1\n1\n", "tract_lengths.txt": ok, "centres.txt": "a 0 0 0\nb 1 1 1\n"})
    elif case == "shape":
        _zip(
            path,
            {"weights.txt": ok, "tract_lengths.txt": "0 1 2\n1 0 2\n", "centres.txt": "a 0 0 0\nb 1 1 1\n"},
        )
    elif case == "centres":
        _zip(
            path,
            {
                "weights.txt": "0 1 1\n1 0 1\n1 1 0\n",
                "tract_lengths.txt": "0 1 1\n1 0 1\n1 1 0\n",
                "centres.txt": "a 0 0 0\nb 1 1 1\n",
            },
        )
    elif case == "too_small":
        _zip(path, {"weights.txt": ok, "tract_lengths.txt": ok, "centres.txt": "a 0 0 0\nb 1 1 1\n"})
    out_dir = tmp_path / "out"
    with pytest.raises((ConnectivityError, SimulationParamsError), match=message) as excinfo:
        simulate_region(path, 0, SimulationParams(**SHORT), out_dir)
    assert str(path) in str(excinfo.value)
    assert not out_dir.exists()


@pytest.mark.parametrize("region", [-1, 994, 10_000, "3", True, 2.0])
def test_region_out_of_range(connectivity_998, tmp_path, region):
    with pytest.raises(SimulationParamsError, match="region"):
        simulate_region(connectivity_998, region, SimulationParams(**SHORT), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dt": 0.0}, "dt"),
        ({"dt": float("nan")}, "dt"),
        ({"segment_ms": 250.25}, "segment_ms"),
        ({"n_segments": 0}, "n_segments"),
        ({"transient_samples": 10_000}, "transient_samples"),
        ({"iterations": (0, 3)}, "iterations"),
        ({"iterations": ()}, "iterations"),
        ({"mu": (0.1,)}, "mu"),
        ({"seed_policy": "random"}, "seed_policy"),
        ({"seed": -1}, "seed"),
        ({"downsample_factor": 0}, "downsample_factor"),
    ],
)
def test_bad_params(kwargs, field):
    with pytest.raises(SimulationParamsError, match=field):
        SimulationParams(**{**SHORT, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "gpu"}, "engine"),
        ({"raw_format": "hdf5"}, "raw_format"),
        ({"precision": "half"}, "precision"),
        ({"threads": 0}, "threads"),
    ],
)
def test_bad_engine_or_format(connectivity_998, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_region(connectivity_998, 0, SimulationParams(**SHORT), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
