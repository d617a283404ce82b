"""The ``synthetic_source`` asset in a real Dagster instance: region selection, metadata, automation."""

from __future__ import annotations

import dagster as dg
import numpy as np
import scipy.io

from deepsif_assets.assets import NMM_SPIKES, synthetic_source
from deepsif_assets.partitions import regions_partitions
from resources.deepsif_paths import DeepsifPaths
from resources.octave import OctaveResource
from tests.support.clipfactory import requires_octave


def _mark_done(instance: dg.DagsterInstance, keys: list[str]) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=NMM_SPIKES, partition=key))


def _resources(anatomy_dir, source) -> dict:
    return {
        "deepsif_paths": DeepsifPaths(anatomy_dir=str(anatomy_dir), source_dir=str(source)),
        "octave": OctaveResource(),
    }


@requires_octave
def test_asset_uses_materialized_regions_with_clips(make_source, anatomy_dir):
    # clips on disk for 3, 4, 6; partitions 3, 4, 5 materialized (5 has no clips, 6 is not done)
    source = make_source({3: 2, 4: 1, 6: 2}, "dagster")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("regions", ["3", "4", "5", "6"])
        _mark_done(instance, ["3", "4", "5"])
        result = dg.materialize(
            [synthetic_source],
            instance=instance,
            resources=_resources(anatomy_dir, source),
            run_config={"ops": {"synthetic_source": {"config": {"mode": "test", "seed": 3}}}},
        )
        assert result.success
        metadata = result.asset_materializations_for_node("synthetic_source")[0].metadata
    assert metadata["regions_used"].value == [3, 4]
    assert metadata["clips_per_region"].value == {"3": 2, "4": 1}
    assert metadata["regions_skipped_too_few_clips"].value == {"5": 0}
    assert metadata["n_samples"].value == 4 * 3 * 2
    assert metadata["dis_matrix_derived"].value is True
    assert "data:image/png;base64," in metadata["distributions_plot"].value
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"variables_and_shapes": True, "values_in_range": True, "nmm_idx_in_clip_store": True}
    out = scipy.io.loadmat(source / "test_sample_source1.mat")
    assert set(np.unique(out["selected_region"][:, :, 0])) == {3, 4}
    assert (source / "test_sample_nmm.h5").is_file()


def test_asset_without_materialized_regions_fails_clearly(tmp_path, anatomy_dir):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [synthetic_source],
            instance=instance,
            resources=_resources(anatomy_dir, tmp_path),
            raise_on_error=False,
        )
        assert not result.success
        failure = result.get_step_failure_events()[0].step_failure_data.error
        assert "no nmm_spikes partition is materialized" in failure.to_string()


@requires_octave
def test_regions_with_different_configurations_are_never_mixed(make_source, anatomy_dir):
    source = make_source({3: 2, 4: 1, 6: 2}, "mixed")
    for region, fingerprint in ((3, "aaaa"), (4, "aaaa"), (6, "bbbb")):
        (source / "nmm_spikes" / f"a{region}" / "_configuration.json").write_text(f'{{"fingerprint": "{fingerprint}"}}')
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("regions", ["3", "4", "6"])
        _mark_done(instance, ["3", "4", "6"])

        def run(config):
            return dg.materialize(
                [synthetic_source],
                instance=instance,
                resources=_resources(anatomy_dir, source),
                run_config={"ops": {"synthetic_source": {"config": {"mode": "test", **config}}}},
                raise_on_error=False,
            )

        mixed = run({})
        assert not mixed.success
        message = mixed.get_step_failure_events()[0].step_failure_data.error.to_string()
        assert "2 different configurations" in message and "aaaa" in message and "bbbb" in message
        assert not (source / "test_sample_source1.mat").exists()
        chosen = run({"fingerprint": "aaaa"})
        assert chosen.success
        metadata = chosen.asset_materializations_for_node("synthetic_source")[0].metadata
        assert metadata["regions_used"].value == [3, 4]
        assert metadata["regions_with_another_configuration"].value == {"bbbb": [6]}


def test_automation_fires_after_some_regions_without_waiting_for_all():
    @dg.asset(key=NMM_SPIKES, partitions_def=regions_partitions)
    def nmm_spikes_stand_in() -> None:
        return None

    # resources are needed to load the definitions, not used: nothing is executed here
    assets = dg.Definitions(
        assets=[nmm_spikes_stand_in, synthetic_source],
        resources={"deepsif_paths": DeepsifPaths(), "octave": OctaveResource()},
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("regions", [str(r) for r in range(10)])
        first = dg.evaluate_automation_conditions(defs=assets, instance=instance)
        assert first.total_requested == 0
        _mark_done(instance, ["0", "1"])  # 8 of 10 regions never materialized
        second = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=first.cursor)
        assert second.get_requested_partitions(synthetic_source.key) == {None}
        third = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=second.cursor)
        assert third.total_requested == 0  # handled; fires again only after another region updates
