"""``deepsif-generate`` against a real persistent Dagster instance (DAGSTER_HOME in tmp), real Octave."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
from deepsif_assets.regions import EXTRACTION_FAILED_FLAG, ExtractionState, RegionLayout, extraction_status

from deepsif_assets.cli import main
from tests.support.region_fixtures import make_anatomy, write_region_raw

pytestmark = pytest.mark.skipif(
    shutil.which("octave-cli") is None, reason="GNU Octave (octave-cli) is not installed"
)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    anatomy = make_anatomy(tmp_path / "anatomy")
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
    for region in (0, 1, 2):
        write_region_raw(source, region)
    bad = RegionLayout(source, 1)
    (bad.raw_dir / "mean_iter_1_a_iter_1_ds.mat").write_bytes(b"corrupt")

    code = main(cli(anatomy, source, 0, 3, "--workers", "2", "--no-synthetic-source"))
    out = capsys.readouterr().out
    assert code == 1
    assert "Successful regions: 2/3 [0, 2]" in out and "Failed regions: 1 [1]" in out
    assert "mean_iter_1_a_iter_1_ds.mat" in out  # the failure names the bad file
    assert materialized("nmm_spikes") == {"0", "2"}
    assert bad.raw_dir.is_dir() and (bad.raw_dir / EXTRACTION_FAILED_FLAG).is_file()  # raw kept for debugging
    for region in (0, 2):
        assert extraction_status(RegionLayout(source, region), [0, 1, 2]).state is ExtractionState.COMPLETE
        assert not RegionLayout(source, region).raw_dir.exists()
    done_clip = RegionLayout(source, 0).clip_path(1)
    mtime = done_clip.stat().st_mtime_ns

    shutil.rmtree(bad.raw_dir)
    write_region_raw(source, 1)  # the user fixes the raw data
    code = main(cli(anatomy, source, 0, 3, "--no-synthetic-source"))
    out = capsys.readouterr().out
    assert code == 0
    assert "[region 0] already materialized with intact clips: skipped" in out
    assert "Successful regions: 3/3 [0, 1, 2]" in out
    assert done_clip.stat().st_mtime_ns == mtime  # not redone
    assert materialized("nmm_spikes") == {"0", "1", "2"}


def test_bad_arguments_exit_non_zero_with_message(env, capsys, tmp_path):
    anatomy, source = env
    assert main(cli(anatomy, source, 3, 3)) == 1
    assert "end_region must be > start_region" in capsys.readouterr().err
    assert main(cli(anatomy, source, -1, 3)) == 1
    assert "start_region must be >= 0" in capsys.readouterr().err
    assert main(cli(anatomy, source, 990, 995)) == 1
    assert "end_region must be <= 994" in capsys.readouterr().err
    assert main(cli(tmp_path / "nowhere", source, 0, 1)) == 1
    assert "leadfield_75_20k.mat is missing" in capsys.readouterr().err


def test_end_to_end_short_simulation_after_crashed_simulation(env, capsys):
    """Real fast engine (short config), Octave extraction, cleanup, then synthetic_source over the done regions.

    Region 0 starts with what a simulation killed mid-way leaves: raw files but no ``_complete.json``.
    """
    _anatomy, source = env
    anatomy = make_anatomy(source.parent / "full_anatomy", full=True)
    partial = RegionLayout(source, 0).raw_dir
    partial.mkdir(parents=True)
    (partial / "mean_iter_0_a_iter_0_ds.mat").write_bytes(b"half written")
    code = main(cli(anatomy, source, 0, 1, "--segment-ms", "2000", "--segments", "2", "--mode", "test"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "% simulated" in out  # simulation progress is printed per region
    assert "Successful regions: 1/1 [0]" in out and "✓ synthetic_source materialized" in out
    assert materialized("raw_nmm") == materialized("nmm_spikes") == {"0"}
    assert extraction_status(RegionLayout(source, 0), [0, 1, 2]).state is ExtractionState.COMPLETE
    assert not partial.exists()
    with dg.DagsterInstance.get() as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("synthetic_source")) is not None
