"""``nmm_spikes`` in a real Dagster instance with real Octave: extraction, cleanup, resume, failures, bad inputs."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import pytest
import scipy.io

from deepsif_assets.assets import nmm_spikes
from deepsif_assets.extraction import EXTRACTION_FAILED_FLAG, ExtractionState, extraction_status
from deepsif_assets.layout import RegionLayout
from resources.deepsif_paths import DeepsifPaths
from resources.octave import OctaveResource
from tests.support.region_fixtures import make_anatomy, snapshot, write_region_raw

pytestmark = pytest.mark.skipif(
    shutil.which("octave-cli") is None, reason="GNU Octave (octave-cli) is not installed"
)

ITERATIONS = [0, 1, 2]


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def folders(tmp_path):
    return make_anatomy(tmp_path / "anatomy"), tmp_path / "source"


def materialize_spikes(instance, anatomy, source, region, octave=None, raise_on_error=True, **config):
    instance.add_dynamic_partitions("regions", [str(region)])
    return dg.materialize(
        [nmm_spikes],
        instance=instance,
        partition_key=str(region),
        resources={
            "deepsif_paths": DeepsifPaths(anatomy_dir=str(anatomy), source_dir=str(source)),
            "octave": octave or OctaveResource(),
        },
        run_config=dg.RunConfig(ops={"nmm_spikes": {"config": config}} if config else {}),
        raise_on_error=raise_on_error,
    )


def materialization(result) -> dg.AssetMaterialization:
    (event,) = result.asset_materializations_for_node("nmm_spikes")
    return event


def failure_text(result) -> str:
    """The step failure with its causes (the asset's own exception is the cause of Dagster's wrapper)."""
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.step_failure_data.error.to_string()


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_extracts_clips_cleans_up_and_checks(instance, folders):
    anatomy, source = folders
    raw = write_region_raw(source, 5)
    assert raw.total == 5
    result = materialize_spikes(instance, anatomy, source, 5)
    assert "5" in instance.get_materialized_partitions(dg.AssetKey("nmm_spikes"))
    meta = materialization(result).metadata
    assert meta["total_clips"].value == raw.total
    assert meta["clips_per_iteration"].value == {
        str(m): len(r.spike_time) for m, r in enumerate(raw.references)
    }
    assert meta["raw_deleted"].value is True
    assert meta["peak_disk_mb"].value >= meta["raw_freed_mb"].value > 0
    assert check_results(result) == {"clip_shapes": True, "clip_count_matches_markers": True, "raw_cleaned_up": True}
    layout = RegionLayout(source, 5)
    assert not layout.raw_dir.exists()
    k = 0
    for m, ref in enumerate(raw.references):
        marker = scipy.io.loadmat(layout.marker_path(m))
        assert marker["spike_time"].ravel().tolist() == ref.spike_time
        for clip in ref.clips:
            k += 1
            np.testing.assert_allclose(
                scipy.io.loadmat(layout.clip_path(k))["data"], clip, rtol=1e-5, atol=1e-4
            )


def test_zero_clip_region_is_done(instance, folders):
    anatomy, source = folders
    write_region_raw(source, 3, with_spikes=False)
    result = materialize_spikes(instance, anatomy, source, 3)
    assert materialization(result).metadata["total_clips"].value == 0
    assert all(check_results(result).values())
    status = extraction_status(RegionLayout(source, 3), ITERATIONS)
    assert status.state is ExtractionState.COMPLETE and status.total_clips == 0


def test_resume_after_crash_in_extraction_gives_uninterrupted_result(instance, folders, tmp_path):
    anatomy, source = folders
    write_region_raw(source, 5)
    materialize_spikes(instance, anatomy, source, 5, keep_raw=True)
    layout = RegionLayout(source, 5)
    expected = snapshot(layout.clip_root)
    pristine = tmp_path / "pristine"
    shutil.copytree(source, pristine)
    for crash in ("markers-missing", "mid-iteration", "stray-files"):
        shutil.rmtree(source)
        shutil.copytree(pristine, source)
        # What a kill -9 at some point of the extraction leaves behind.
        if crash == "markers-missing":  # all clips written, markers of the last two iterations never written
            layout.marker_path(1).unlink()
            layout.marker_path(2).unlink()
        elif (
            crash == "mid-iteration"
        ):  # iteration 2 half written: marker and last clip missing, a temp file left
            layout.marker_path(2).unlink()
            last = max(int(p.stem.split("_")[1]) for p in layout.clip_dir.glob("nmm_*.mat"))
            layout.clip_path(last).rename(layout.clip_dir / f".partial_nmm_{last}.mat")
        else:  # a clip numbered beyond the total (e.g. left by the original's numbering bug)
            shutil.copy(layout.clip_path(1), layout.clip_path(40))
        assert extraction_status(layout, ITERATIONS).state is ExtractionState.PARTIAL, crash
        result = materialize_spikes(instance, anatomy, source, 5)
        assert _same(snapshot(layout.clip_root), expected), crash
        assert not layout.raw_dir.exists()
        assert all(check_results(result).values())


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_partial_raw_is_never_used(instance, folders):
    """Raw data without _complete.json (simulation killed) → clear failure, nothing extracted."""
    anatomy, source = folders
    write_region_raw(source, 5, complete=False)
    result = materialize_spikes(instance, anatomy, source, 5, raise_on_error=False)
    assert not result.success
    assert "5" not in instance.get_materialized_partitions(dg.AssetKey("nmm_spikes"))
    assert "materialize raw_nmm for partition 5" in failure_text(result)
    assert not RegionLayout(source, 5).clip_dir.exists() or not list(
        RegionLayout(source, 5).clip_dir.iterdir()
    )


def test_adopts_complete_clips_when_raw_already_deleted(instance, folders):
    """A run that died after cleanup but before recording the materialization: clips verified, not redone."""
    anatomy, source = folders
    write_region_raw(source, 5)
    materialize_spikes(instance, anatomy, source, 5)
    layout = RegionLayout(source, 5)
    before = snapshot(layout.clip_root)
    layout.window_cache_path.unlink()  # as for clips extracted before the cache existed
    with dg.instance_for_test() as fresh:
        result = materialize_spikes(fresh, anatomy, source, 5)
        meta = materialization(result).metadata
    assert meta["adopted_existing_clips"].value is True
    assert meta["window_cache_mb"].value == round(layout.window_cache_path.stat().st_size / 1e6, 1) > 0
    assert _same(snapshot(layout.clip_root), before)  # clips, markers and the rebuilt cache


def test_failed_extraction_keeps_raw_and_records_the_error(instance, folders):
    anatomy, source = folders
    write_region_raw(source, 5)
    layout = RegionLayout(source, 5)
    (layout.raw_dir / "mean_iter_1_a_iter_5_ds.mat").write_bytes(b"not a mat file")
    result = materialize_spikes(instance, anatomy, source, 5, raise_on_error=False)
    assert not result.success
    assert layout.raw_dir.is_dir() and (layout.raw_dir / "mean_iter_0_a_iter_5_ds.mat").is_file()
    assert "mean_iter_1_a_iter_5_ds.mat" in (layout.raw_dir / EXTRACTION_FAILED_FLAG).read_text()
    assert "5" not in instance.get_materialized_partitions(dg.AssetKey("nmm_spikes"))


def test_bad_inputs_give_clear_errors(instance, folders, tmp_path):
    anatomy, source = folders
    write_region_raw(source, 5)

    def error_of(**kwargs) -> str:
        result = materialize_spikes(
            instance,
            kwargs.pop("anatomy", anatomy),
            source,
            kwargs.pop("region", 5),
            raise_on_error=False,
            **kwargs,
        )
        assert not result.success
        return failure_text(result)

    assert "anatomy file" in error_of(leadfield_name="missing_leadfield.mat")
    scipy.io.savemat(anatomy / "wrong.mat", {"fwd": np.ones((75, 998))})
    assert "expected (n_electrodes, 994)" in error_of(leadfield_name="wrong.mat")
    assert "out of range" in error_of(region=994)
    result = materialize_spikes(
        instance, anatomy, source, 5, octave=OctaveResource(executable="no-such-octave"), raise_on_error=False
    )
    assert "'no-such-octave' not found on PATH" in failure_text(result)
    assert RegionLayout(source, 5).raw_dir.is_dir()  # raw kept after every failure


def test_original_format_raw_gives_same_clips_as_compact(instance, folders, tmp_path):
    anatomy, source = folders
    write_region_raw(source, 5, raw_format="original")
    materialize_spikes(instance, anatomy, source, 5)
    other = tmp_path / "compact"
    write_region_raw(other, 5, raw_format="compact")
    materialize_spikes(instance, anatomy, other, 5)
    assert _same(snapshot(source / "nmm_spikes"), snapshot(other / "nmm_spikes"))


def test_definitions_load():
    from deepsif_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()} >= {
        "raw_nmm",
        "nmm_spikes",
    }
