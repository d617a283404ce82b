"""The DeepSIF assets: per region ``raw_nmm`` (simulation) → ``nmm_spikes`` (clips, raw clean-up), then one
``synthetic_source`` over every region. Thin: config in, the pure steps, metadata and checks out.

Dagster's materialization status is the source of truth for resume; the rules that keep the files in agreement
with it are in :mod:`deepsif_assets.extraction` (complete / partial clips, raw deleted only after the clips are
verified) and :mod:`deepsif_assets.fingerprint` (which configuration made a region).
"""

import contextlib
import warnings
from pathlib import Path

import dagster as dg

from deepsif_assets import metadata
from deepsif_assets.config import NmmSpikesConfig, RawNmmConfig, SyntheticSourceConfig
from deepsif_assets.extraction import clip_check_results, extract_region, region_lock
from deepsif_assets.fingerprint import record_in_source
from deepsif_assets.layout import RegionLayout
from deepsif_assets.params import REGIONS_PER_BATCH, ExtractionParams, SimulationOptions, SyntheticParams
from deepsif_assets.partitions import regions_partitions, validate_region_key
from deepsif_assets.schedule import regions_label
from deepsif_assets.simulation.params import SimulationParams
from neuro_core.measure import PeakDiskSampler, StepPeakRss
from neuro_pipelines.instance import claim_run
from resources.deepsif_paths import DeepsifPaths
from resources.octave import OctaveResource

GROUP = "deepsif"
NMM_SPIKES = dg.AssetKey("nmm_spikes")
CLIP_CHECKS = {
    "clip_shapes": "every clip's data is 500 × 994 single",
    "clip_count_matches_markers": "clip files nmm_1 … nmm_N with N = the markers' total",
    "raw_cleaned_up": "raw_nmm/a<r> deleted after the clips were verified (unless keep_raw)",
}
SYNTHETIC_CHECKS = {
    "variables_and_shapes": "every variable present with its documented shape and dtype",
    "values_in_range": "no NaN/Inf; region ids in 0…993 (or the pad 15213); mag_change in (0, 1]; "
    "current_snr in {5, 10, 15, 20}",
    "nmm_idx_in_clip_store": "every nmm_idx is a row of the clip store",
}
# Backfill policies are "beta" in Dagster 1.13; this code location relies on them knowingly (batched simulation).
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset` is currently in beta")
# Eager, but tolerant of regions that were never materialized: fires after any region's clips update, once no
# region is in progress (the default eager() would wait for all 994 regions).
SYNTHETIC_AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


def _region(context: dg.AssetExecutionContext) -> int:
    claim_run(context)
    return int(validate_region_key(context.partition_key))


@dg.asset(
    partitions_def=regions_partitions,
    group_name=GROUP,
    pool="tvb",
    kinds={"python", "numba"},
    # A backfill simulates several regions per run, as lanes of one lock-step batch (every region keeps its own
    # partition status and metadata); clip extraction stays one run per region.
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=REGIONS_PER_BATCH),
    description="Jansen–Rit network simulation of cortical regions, every iteration → `source/raw_nmm/a<r>/` "
    "(a compact `_ds.mat` per iteration, or the original segment files). A run may simulate a batch of regions "
    "together (one lane per region and iteration).",
)
def raw_nmm(
    context: dg.AssetExecutionContext, config: RawNmmConfig, deepsif_paths: DeepsifPaths
) -> dg.MaterializeResult:
    from deepsif_assets.simulation import simulate_regions  # numba / tvb: loaded in the step, not at import

    claim_run(context)
    regions = [int(validate_region_key(key)) for key in context.partition_keys]
    params, options = config.build(SimulationParams), config.build(SimulationOptions)
    connectivity = deepsif_paths.anatomy_file(options.connectivity_file)
    layouts = {r: RegionLayout(deepsif_paths.source_path, r) for r in regions}
    label = regions_label(regions)
    context.log.info(
        f"{label}: {len(params.iterations)} iteration(s) × {params.n_segments} × {params.segment_ms:g} ms at dt "
        f"{params.dt:g} ms, engine {options.engine}, {len(regions) * len(params.iterations)} lanes"
    )
    with contextlib.ExitStack() as stack:
        for layout in layouts.values():
            stack.enter_context(region_lock(layout, "raw_nmm"))
        disk = stack.enter_context(PeakDiskSampler([layout.raw_dir for layout in layouts.values()]))
        memory = stack.enter_context(StepPeakRss())
        configurations = {
            r: metadata.start_raw_record(layout, params, options, connectivity) for r, layout in layouts.items()
        }
        results = simulate_regions(
            connectivity,
            regions,
            params,
            {r: layout.raw_dir for r, layout in layouts.items()},
            engine=options.engine,
            raw_format=options.raw_format,
            precision=options.precision,
            threads=options.threads,
            progress=metadata.batch_progress_logger(context.log, label, regions),
        )
    for r, result in results.items():
        context.add_asset_metadata(
            metadata.raw_metadata(
                result, layouts[r], configurations[r], regions, disk.peak_bytes, deepsif_paths.anatomy_dir, memory
            ),
            partition_key=str(r),
        )
    return dg.MaterializeResult()


@dg.asset(
    partitions_def=regions_partitions,
    group_name=GROUP,
    pool="octave",
    kinds={"octave"},
    deps=[raw_nmm],
    # Runs on its own once raw_nmm of the partition is (re)materialized by itself; a run that materializes both
    # (the region job) does not trigger a second extraction.
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[dg.AssetCheckSpec(name, asset="nmm_spikes", description=d) for name, d in CLIP_CHECKS.items()],
    description="Spike clips of one region (`matlab/process_region_clips.m` in Octave or MATLAB), then raw "
    "clean-up → `source/nmm_<filename>/a<r>/nmm_<k>.mat` and the `clip_info` markers.",
)
def nmm_spikes(
    context: dg.AssetExecutionContext,
    config: NmmSpikesConfig,
    deepsif_paths: DeepsifPaths,
    octave: OctaveResource,
) -> dg.MaterializeResult:
    region = _region(context)
    params = config.build(ExtractionParams)
    layout = RegionLayout(deepsif_paths.source_path, region, params.filename)
    leadfield = deepsif_paths.anatomy_file(params.leadfield_name)
    configuration = metadata.clip_configuration(layout, params, leadfield)
    report = extract_region(layout, params, leadfield, octave, configuration, log=context.log.info)
    record_in_source(layout.clip_root, region, configuration)
    checks = clip_check_results(layout, report.status, params.keep_raw)
    return dg.MaterializeResult(
        metadata=metadata.clip_metadata(report, layout, configuration, octave.backend),
        check_results=[
            dg.AssetCheckResult(check_name=name, passed=passed, metadata=values)
            for name, (passed, values) in checks.items()
        ],
    )


@dg.asset(
    group_name=GROUP,
    deps=[dg.AssetDep(NMM_SPIKES, partition_mapping=dg.AllPartitionMapping())],
    automation_condition=SYNTHETIC_AUTOMATION,
    pool="octave",
    kinds={"octave"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="synthetic_source", description=d) for name, d in SYNTHETIC_CHECKS.items()
    ],
    description="`<train|test>_sample_source1.mat` (patches, clip indices, SNRs, scale ratios, in-patch decay) "
    "over the regions whose `nmm_spikes` partitions are materialized, and the clip store "
    "`<mode>_sample_nmm.h5` that `nmm_idx` points into.",
)
def synthetic_source(
    context: dg.AssetExecutionContext,
    config: SyntheticSourceConfig,
    deepsif_paths: DeepsifPaths,
    octave: OctaveResource,
) -> dg.MaterializeResult:
    from deepsif_assets.synthetic.checks import check_synthetic_output
    from deepsif_assets.synthetic.pipeline import SyntheticRequest, build_synthetic_source, choose_regions

    claim_run(context)
    params = config.build(SyntheticParams)
    materialized = context.instance.get_materialized_partitions(NMM_SPIKES)
    choice = choose_regions(Path(deepsif_paths.source_dir), params, materialized)
    result = build_synthetic_source(
        SyntheticRequest(deepsif_paths.anatomy_dir, deepsif_paths.source_dir, choice.regions, params),
        octave.call,
        log=context.log.info,
    )
    checks = check_synthetic_output(result.output_file, result.clip_store_rows)
    return dg.MaterializeResult(
        metadata=metadata.synthetic_metadata(result, choice, params, deepsif_paths.anatomy_dir),
        check_results=[
            dg.AssetCheckResult(check_name=name, passed=passed, metadata={"problems": "; ".join(problems) or "none"})
            for name, (passed, problems) in checks.items()
        ],
    )


# The per-region chain of the region jobs (raw_nmm may cover a batch of partitions in one run, nmm_spikes one).
REGION_ASSETS = (raw_nmm, nmm_spikes)
DEEPSIF_ASSETS = [*REGION_ASSETS, synthetic_source]
