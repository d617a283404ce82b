"""``deepsif-generate`` against a real persistent Dagster instance (DAGSTER_HOME in tmp), real Octave: runs of
the named jobs, resume by configuration, exit codes, validation before launch, kill -9 recovery."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from deepsif_assets.cli import main
from deepsif_assets.definitions import REGION_JOB, SYNTHETIC_JOB
from deepsif_assets.extraction import EXTRACTION_FAILED_FLAG, ExtractionState, extraction_status
from deepsif_assets.fingerprint import simulation_configuration
from deepsif_assets.layout import RegionLayout
from deepsif_assets.params import SimulationOptions
from deepsif_assets.simulation.params import SimulationParams
from tests.support.region_fixtures import make_anatomy, snapshot, write_region_raw

pytestmark = pytest.mark.skipif(shutil.which("octave-cli") is None, reason="GNU Octave (octave-cli) is not installed")
SHORT = ["--segment-ms", "2000", "--segments", "2"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    anatomy = make_anatomy(tmp_path / "anatomy", full=True)
    return anatomy, tmp_path / "source"


def cli(anatomy, source, start, end, *extra) -> list[str]:
    return [
        "--start_region", str(start), "--end_region", str(end),
        "--anatomy-dir", str(anatomy), "--source-dir", str(source), *extra,
    ]  # fmt: skip


def materialized(asset: str) -> set[str]:
    with dg.DagsterInstance.get() as instance:
        return set(instance.get_materialized_partitions(dg.AssetKey(asset)))


def test_failing_region_does_not_stop_others_and_resume_skips_done(env, capsys):
    anatomy, source = env
    requested = simulation_configuration(SimulationParams(), SimulationOptions(), anatomy / "connectivity_998.zip")
    for region in (0, 1, 2):
        write_region_raw(source, region, simulation=requested)
    bad = RegionLayout(source, 1)
    (bad.raw_dir / "mean_iter_1_a_iter_1_ds.mat").write_bytes(b"corrupt")

    code = main(cli(anatomy, source, 0, 3, "--workers", "2", "--no-synthetic-source"))
    out = capsys.readouterr().out
    assert code == 1
    assert "successful regions: 2/3" in out and "failed regions: 1 [1]" in out
    assert "mean_iter_1_a_iter_1_ds.mat" in out  # the failure names the bad file
    assert materialized("nmm_spikes") == {"0", "2"}
    assert bad.raw_dir.is_dir() and (bad.raw_dir / EXTRACTION_FAILED_FLAG).is_file()  # raw kept for debugging
    for region in (0, 2):
        assert extraction_status(RegionLayout(source, region), [0, 1, 2]).state is ExtractionState.COMPLETE
        assert not RegionLayout(source, region).raw_dir.exists()
    done_clip = RegionLayout(source, 0).clip_path(1)
    mtime = done_clip.stat().st_mtime_ns
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert {r.job_name for r in runs} == {REGION_JOB}
        assert sorted(r.tags["dagster/partition"] for r in runs) == ["0", "1", "2"]

    shutil.rmtree(bad.raw_dir)
    write_region_raw(source, 1, simulation=requested)  # the user fixes the raw data
    code = main(cli(anatomy, source, 0, 3, "--no-synthetic-source"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "already done with this configuration (skipped): 0, 2" in out
    assert "successful regions: 3/3" in out
    assert done_clip.stat().st_mtime_ns == mtime  # not redone
    assert materialized("nmm_spikes") == {"0", "1", "2"}


def test_end_to_end_short_simulation_after_crashed_simulation_then_a_changed_configuration(env, capsys):
    """Real fast engine (short config), Octave extraction, clean-up, the synthetic source; region 0 starts with
    what a simulation killed mid-way leaves: raw files but no ``_complete.json``."""
    anatomy, source = env
    partial = RegionLayout(source, 0).raw_dir
    partial.mkdir(parents=True)
    (partial / "mean_iter_0_a_iter_0_ds.mat").write_bytes(b"half written")
    code = main(cli(anatomy, source, 0, 1, *SHORT, "--mode", "test"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "simulated 100 %" in out and "✓ synthetic source" in out
    assert materialized("raw_nmm") == materialized("nmm_spikes") == {"0"}
    assert extraction_status(RegionLayout(source, 0), [0, 1, 2]).state is ExtractionState.COMPLETE
    assert not partial.exists()
    with dg.DagsterInstance.get() as instance:
        assert {r.job_name for r in instance.get_runs()} == {REGION_JOB, SYNTHETIC_JOB}
    before = snapshot(RegionLayout(source, 0).clip_root)

    # the same regions with another configuration: stop before launching anything, say what differs
    code = main(cli(anatomy, source, 0, 1, "--segment-ms", "2000", "--segments", "3", "--no-synthetic-source"))
    err = capsys.readouterr().err
    assert code == 2 and "simulation.params.n_segments: 2 → 3" in err and "--rerun-changed" in err
    assert snapshot(RegionLayout(source, 0).clip_root).keys() == before.keys()
    code = main(cli(anatomy, source, 0, 1, "--segment-ms", "2000", "--segments", "3", "--no-synthetic-source",
                    "--rerun-changed"))
    assert code == 0, capsys.readouterr().out
    assert "n_segments" not in capsys.readouterr().err


def _bad_leadfield(anatomy: Path) -> None:
    import numpy as np
    import scipy.io

    scipy.io.savemat(anatomy / "leadfield_75_20k.mat", {"fwd": np.zeros((75, 76))})


@pytest.mark.parametrize(
    ("extra", "prepare", "message"),
    [
        (["--end_region", "3"], None, "expected 0 ≤ start < end ≤ 994"),
        (["--iterations", "7"], None, "SimulationParams.iterations=(7,) is invalid"),
        (["--dt", "0.3"], None, "a whole multiple of dt=0.3"),
        (["--workers", "0"], None, "--workers 0"),
        ([], lambda a: (a / "leadfield_75_20k.mat").unlink(), "leadfield_75_20k.mat is missing"),
        ([], _bad_leadfield, "has shape (75, 76); expected (n_electrodes, 994)"),
        ([], lambda a: (a / "fs_cortex_20k_inflated.mat").unlink(), "fs_cortex_20k_inflated.mat is missing"),
        ([], lambda a: (a / "connectivity_998.zip").write_text("no zip"), "not a readable zip"),
    ],
)
def test_bad_configuration_exits_2_at_once_with_nothing_launched(env, capsys, extra, prepare, message):
    anatomy, source = env
    if prepare is not None:
        prepare(anatomy)
    started = time.monotonic()
    code = main([*cli(anatomy, source, 3, 4), *extra])
    assert code == 2 and message in capsys.readouterr().err
    assert time.monotonic() - started < 20
    assert not (source / "raw_nmm").exists() and not Path(os.environ["DAGSTER_HOME"]).exists()


def test_simulation_runs_that_cannot_fit_in_memory_are_one_error_before_any_run(env, capsys, monkeypatch):
    anatomy, source = env
    # 2 GB available: 2 runs × 4 regions × ≈ 0.36 GB (the original configuration) do not fit, 2 × 2 would
    monkeypatch.setattr("deepsif_assets.validation.available_memory_bytes", lambda: 2e9)
    code = main([*cli(anatomy, source, 3, 11), "--workers", "2", "--batch", "4"])
    err = capsys.readouterr().err
    assert code == 2 and "simulation runs of 4 region(s), 2 at once, need ≈ 2.9 GB" in err, err
    assert "lower --batch" in err
    assert not (source / "raw_nmm").exists()
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []


def test_half_written_raw_files_of_killed_simulations_are_removed_first_unless_the_region_is_busy(env, capsys):
    """What a kill -9 leaves of the compact raw files (temporary files, allocated whole) is removed before the
    free-space check, but never while a run holds the region."""
    from deepsif_assets.extraction import region_lock

    anatomy, source = env
    leftovers = {}
    for region in (3, 4):
        layout = RegionLayout(source, region)
        layout.raw_dir.mkdir(parents=True)
        leftovers[region] = layout.raw_dir / f".mean_iter_0_a_iter_{region}_ds.mat.abcd1234.tmp"
        leftovers[region].write_bytes(b"\0" * 4096)
        (layout.raw_dir / "notes.txt").write_text("not ours")
    (anatomy / "leadfield_75_20k.mat").unlink()  # stop after the checks: nothing is launched
    with region_lock(RegionLayout(source, 4), "a simulation"):
        assert main(cli(anatomy, source, 3, 5)) == 2
    out = capsys.readouterr().out
    assert "removed 1 half-written raw file(s) of killed simulations" in out
    assert not leftovers[3].exists() and leftovers[4].exists()  # region 4 was busy
    assert (source / "raw_nmm" / "a3" / "notes.txt").exists()


def test_octave_missing_from_path_is_found_before_launch(env, capsys, monkeypatch, tmp_path):
    anatomy, source = env
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    assert main(cli(anatomy, source, 3, 4)) == 2
    assert "octave executable 'octave-cli' not found on PATH" in capsys.readouterr().err


def test_symlinked_anatomy_is_accepted(tmp_path, capsys, monkeypatch):
    from deepsif_assets.cli import build_parser, parse_request, validate

    anatomy = make_anatomy(tmp_path / "annex", full=True, symlinks=True)
    assert (anatomy / "leadfield_75_20k.mat").is_symlink()
    request = parse_request(build_parser().parse_args(cli(anatomy, tmp_path / "source", 0, 1)))
    assert len(validate(request)["fingerprint"]) == 16


# a batch that simulates for several progress reads of the command (runs.PROGRESS_SECONDS), so that a kill lands
# while it simulates
KILLABLE = ["--segment-ms", "2000", "--segments", "12"]


def _generate(anatomy: Path, source: Path, home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deepsif_assets.cli", *cli(anatomy, source, 0, 2, *KILLABLE, "--workers", "2",
                                                          "--no-synthetic-source")],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _kill_when_both_regions_simulate(process: subprocess.Popen) -> None:
    """Both regions are lanes of one simulation batch: kill the whole command while that batch runs."""
    for line in process.stdout:
        if line.startswith("[regions 0-1] simulated") and not line.rstrip().endswith("100 %"):
            os.killpg(process.pid, signal.SIGKILL)
            break
    else:
        raise AssertionError("the batch of regions 0-1 never reported simulating")
    process.wait()


def test_kill_9_twice_while_both_regions_simulate_then_the_same_command_completes(tmp_path):
    anatomy = make_anatomy(tmp_path / "anatomy")
    home, source = tmp_path / "home", tmp_path / "source"
    for _ in range(2):
        _kill_when_both_regions_simulate(_generate(anatomy, source, home))
    started = time.monotonic()
    rerun = _generate(anatomy, source, home)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out
    assert time.monotonic() - started < 240, "no run waits for pool slots the killed runs held"
    assert not list(source.rglob("*.tmp")), "the killed runs' half-written raw files are gone"
    reference = _generate(anatomy, tmp_path / "reference", tmp_path / "home2")
    assert reference.wait(timeout=600) == 0
    for region in (0, 1):
        got = snapshot(RegionLayout(source, region).clip_dir)
        want = snapshot(RegionLayout(tmp_path / "reference", region).clip_dir)
        assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        statuses = [r.status for r in instance.get_runs()]
        assert dg.DagsterRunStatus.STARTED not in statuses and dg.DagsterRunStatus.NOT_STARTED not in statuses
        assert instance.event_log_storage.get_concurrency_info("tvb").claimed_slots == []
