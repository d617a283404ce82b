"""The ``synthetic_source`` asset: DeepSIF's synthetic source table over every region whose clips are done."""

import dagster as dg

from deepsif_assets.synthetic.config import SyntheticSourceConfig
from resources.deepsif_paths import DeepsifPaths
from resources.octave import OctaveResource

NMM_SPIKES = dg.AssetKey("nmm_spikes")

# Eager, but tolerant of regions that were never materialized: fires after any region's clips update, once no
# region is in progress (the default eager() would wait for all 994 regions).
SYNTHETIC_AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


@dg.asset(
    group_name="deepsif",
    deps=[dg.AssetDep(NMM_SPIKES, partition_mapping=dg.AllPartitionMapping())],
    automation_condition=SYNTHETIC_AUTOMATION,
    description="<train|test>_sample_source1.mat (patches, clip indices, SNRs, scale ratios, in-patch decay) "
    "over the regions whose nmm_spikes partitions are materialized, plus the clip store <mode>_sample_nmm.h5.",
)
def synthetic_source(
    context: dg.AssetExecutionContext,
    config: SyntheticSourceConfig,
    deepsif_paths: DeepsifPaths,
    octave: OctaveResource,
) -> dg.MaterializeResult:
    from deepsif_assets.synthetic.metadata import synthetic_metadata
    from deepsif_assets.synthetic.pipeline import (
        SyntheticRequest,
        build_synthetic_source,
        regions_from_partition_keys,
    )

    materialized = regions_from_partition_keys(context.instance.get_materialized_partitions(NMM_SPIKES))
    if config.regions is None:
        candidates, not_materialized = materialized, []
    else:
        done = set(materialized)
        candidates = sorted(r for r in set(config.regions) if r in done)
        not_materialized = sorted(r for r in set(config.regions) if r not in done)
    if not candidates:
        raise dg.Failure(
            description=(
                "no nmm_spikes partition is materialized"
                + (f" among the requested regions {sorted(config.regions)[:20]}" if config.regions else "")
                + ": run the per-region clip extraction first"
            )
        )
    result = build_synthetic_source(
        SyntheticRequest(
            anatomy_dir=deepsif_paths.anatomy_dir,
            source_dir=deepsif_paths.source_dir,
            candidate_regions=tuple(candidates),
            mode=config.mode,
            n_sources=config.n_sources,
            seed=config.seed,
            filename=config.filename,
            leadfield=config.leadfield,
            faithful_window=config.faithful_window,
            min_clips_per_region=config.min_clips_per_region,
            write_clip_store=config.write_clip_store,
        ),
        octave.call,
        log=context.log.info,
    )
    metadata = synthetic_metadata(result, config.model_dump(), not_materialized)
    return dg.MaterializeResult(metadata=metadata)
