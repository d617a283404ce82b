"""Per-region DeepSIF assets: ``raw_nmm`` (simulation) → ``nmm_spikes`` (Octave clip extraction + raw cleanup).

Both are partitioned by the ``regions`` dynamic partitions (one key per fs region). How on-disk state is kept in
agreement with Dagster's materialization status (the source of truth for resume):

- ``raw_nmm`` always re-simulates when it runs; the simulation removes a stale partial ``raw_nmm/a{r}`` first and
  writes ``_complete.json`` last, so raw data without that flag is never used.
- ``nmm_spikes`` starts by classifying the region's clips and markers (``regions.extraction_status``). With
  complete raw data it wipes any earlier clips/markers of the region and extracts from scratch (a killed run can
  leave no partial or duplicate clips). Without raw data it only *adopts* clips that are complete (a run that died
  after deleting raw but before recording the materialization); otherwise it fails with a message that says to
  re-materialize ``raw_nmm``.
- Raw data is deleted only after the clips and all markers were written and verified. When extraction fails the
  raw folder stays and ``_extraction_failed.json`` in it records the error; the step fails (a failed partition).
- A materialized ``raw_nmm`` whose folder was cleaned up is expected: the clips are its product. The CLI's resume
  check therefore looks at ``nmm_spikes`` status plus intact clips, and re-runs ``raw_nmm`` when raw is gone.
"""

import contextlib
import datetime as dt
import time
from pathlib import Path

import dagster as dg
import numpy as np

from deepsif_assets.config import NmmSpikesConfig, RawNmmConfig
from deepsif_assets.measure import PeakDiskSampler, Stopwatch, process_peak_rss_bytes, self_peak_rss_bytes
from deepsif_assets.partitions import N_FS_REGIONS, regions_partitions, validate_region_key
from deepsif_assets.plots import activity_png, clips_overlay_png
from deepsif_assets.regions import (
    EXTRACTION_FAILED_FLAG,
    ExtractionState,
    RegionDataError,
    RegionLayout,
    check_leadfield,
    clip_shapes,
    delete_raw,
    extraction_status,
    raw_is_complete,
    region_lock,
    wipe_extraction,
)
from deepsif_assets.synthetic.clips import window_cache_covers
from neuro_pipelines.fsutil import tree_size_bytes, write_json_atomic
from neuro_pipelines.plots import png_markdown
from resources.deepsif_paths import DeepsifPaths
from resources.octave import OctaveResource

GROUP = "deepsif"
CHECK_CLIP_SHAPES = "clip_shapes"
CHECK_CLIP_COUNT = "clip_count_matches_markers"
CHECK_RAW_CLEANED = "raw_cleaned_up"
CLIP_SAMPLING_HZ = 500.0  # at dt = 0.5 ms and ×4 decimation
PROGRESS_EVERY_PCT = 5.0


@dg.asset(
    partitions_def=regions_partitions,
    group_name=GROUP,
    pool="tvb",
    kinds={"python", "numba"},
    description="Neural-mass simulation for one fs region, all iterations → source/raw_nmm/a{r}/ (spec §4).",
)
def raw_nmm(
    context: dg.AssetExecutionContext, config: RawNmmConfig, deepsif_paths: DeepsifPaths
) -> dg.MaterializeResult:
    from deepsif_assets.simulation import simulate_region  # heavy (numba / tvb): import in the step

    region = int(validate_region_key(context.partition_key))
    params = config.simulation_params()
    connectivity = deepsif_paths.anatomy_file(config.connectivity_file)
    layout = RegionLayout(Path(deepsif_paths.source_dir), region)
    last_logged = {"pct": -PROGRESS_EVERY_PCT}

    def progress(iteration: int, segment: int, pct: float) -> None:
        if pct >= last_logged["pct"] + PROGRESS_EVERY_PCT or pct >= 100.0:
            last_logged["pct"] = pct
            context.log.info(
                f"region {region}: iteration {iteration} segment {segment}: {pct:.1f} % simulated"
            )

    context.log.info(
        f"region {region}: simulating {len(params.iterations)} iteration(s) × {params.n_segments} × "
        f"{params.segment_ms:g} ms at dt {params.dt:g} ms, engine {config.engine}, raw format {config.raw_format}"
    )
    started = time.perf_counter()
    with region_lock(layout, "raw_nmm"), PeakDiskSampler([layout.raw_dir]) as disk:
        result = simulate_region(
            connectivity,
            region,
            params,
            layout.raw_dir,
            engine=config.engine,
            raw_format=config.raw_format,
            progress=progress,
        )
    seconds = time.perf_counter() - started
    files = sorted(p for p in layout.raw_dir.iterdir() if p.is_file())
    metadata: dict[str, object] = dict(result.to_metadata())
    metadata.update(
        {
            "region": region,
            "raw_dir": dg.MetadataValue.path(str(layout.raw_dir)),
            "files": len(files),
            "bytes": tree_size_bytes(layout.raw_dir),
            "peak_disk_bytes": disk.peak_bytes,
            "engine": config.engine,
            "raw_format": config.raw_format,
            "wall_time_s": round(seconds, 2),
            "ms_per_step": round(1000.0 * seconds / max(1, params.total_steps * len(params.iterations)), 4),
            "python_peak_rss_bytes": self_peak_rss_bytes(),
        }
    )
    if result.preview_mv is not None and len(result.preview_mv):
        metadata["activity_plot"] = png_markdown(
            activity_png(
                result.preview_time_ms,
                result.preview_mv,
                f"region {region}: TVB node {result.excitable_tvb_node} after the transient (iteration "
                f"{params.iterations[0]})",
            ),
            "simulated activity at the excitable node",
        )
    return dg.MaterializeResult(metadata=metadata)


def _record_failure(layout: RegionLayout, error: BaseException) -> None:
    """Leave the error beside the kept raw data (debugging) — the failed step is recorded by Dagster.

    Best effort: on a full disk this note cannot be written, and that must not hide the original error.
    """
    if layout.raw_dir.is_dir():
        with contextlib.suppress(OSError):
            write_json_atomic(
                layout.raw_dir / EXTRACTION_FAILED_FLAG,
                {"region": layout.region, "error": str(error), "at": dt.datetime.now(dt.UTC).isoformat()},
            )


def _clip_plot(layout: RegionLayout, total: int, region: int) -> dg.MetadataValue | None:
    if total == 0:
        return None
    import scipy.io

    picks = np.unique(np.linspace(1, total, num=min(total, 6)).round().astype(int))
    traces = np.stack([scipy.io.loadmat(layout.clip_path(int(k)))["data"][:, region] for k in picks])
    return png_markdown(
        clips_overlay_png(traces, CLIP_SAMPLING_HZ, f"region {region}: source channel"), "clips"
    )


@dg.asset(
    partitions_def=regions_partitions,
    group_name=GROUP,
    pool="octave",
    kinds={"octave"},
    deps=[raw_nmm],
    # Runs on its own once raw_nmm of the partition is (re)materialized by itself; a run that materializes both
    # (CLI, region job) does not trigger a second extraction.
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_CLIP_SHAPES, asset="nmm_spikes", description="Every clip is data (500, 994) single"
        ),
        dg.AssetCheckSpec(
            CHECK_CLIP_COUNT, asset="nmm_spikes", description="Clip files nmm_1…N, N = markers' total"
        ),
        dg.AssetCheckSpec(
            CHECK_RAW_CLEANED, asset="nmm_spikes", description="raw_nmm/a{r} deleted (unless keep_raw)"
        ),
    ],
    description="Spike clips of one region by matlab/process_region_clips.m in Octave/MATLAB, then raw cleanup "
    "→ source/nmm_<filename>/a{r}/nmm_{k}.mat + clip_info markers (spec §5).",
)
def nmm_spikes(
    context: dg.AssetExecutionContext,
    config: NmmSpikesConfig,
    deepsif_paths: DeepsifPaths,
    octave: OctaveResource,
) -> dg.MaterializeResult:
    region = int(validate_region_key(context.partition_key))
    layout = RegionLayout(Path(deepsif_paths.source_dir), region, config.filename)
    leadfield = deepsif_paths.anatomy_file(config.leadfield_name)
    check_leadfield(leadfield, N_FS_REGIONS)
    watch = Stopwatch()
    before = extraction_status(layout, config.iterations)
    adopted = False
    octave_peak_rss = None
    with region_lock(layout, "nmm_spikes"), PeakDiskSampler([layout.raw_dir, layout.clip_dir]) as disk:
        if not raw_is_complete(layout):
            if before.state is not ExtractionState.COMPLETE:
                raise RegionDataError(
                    f"region {region}: raw data in {layout.raw_dir} is missing or incomplete (no _complete.json) and "
                    f"its clips are {before.state.value}: materialize raw_nmm for partition {region} first"
                )
            adopted = True
            context.log.info(
                f"region {region}: raw data gone, clips and markers complete: verified, not re-extracted"
            )
            if before.total_clips and not window_cache_covers(
                layout.clip_root, region, before.total_clips, N_FS_REGIONS
            ):  # clips from before the cache existed, or a crash between the last clip and the cache
                octave.call(
                    "write_clip_windows",
                    str(layout.clip_dir),
                    region,
                    before.total_clips,
                    str(layout.window_cache_path),
                )
                context.log.info(f"region {region}: wrote the peak-window cache {layout.window_cache_path}")
        else:
            if before.state is not ExtractionState.EMPTY:
                removed = wipe_extraction(layout)
                context.log.warning(
                    f"region {region}: earlier extraction was {before.state.value} ({before.reason or 'complete'}); "
                    f"removed {removed} files, extracting again"
                )
            context.log.info(f"region {region}: extracting clips with {octave.backend} from {layout.raw_dir}")
            try:
                octave.call(
                    "process_region_clips",
                    region,
                    str(layout.source_dir),
                    str(leadfield),
                    config.filename,
                    config.matlab_options(N_FS_REGIONS),
                )
                pid = octave.engine_pid()
                octave_peak_rss = process_peak_rss_bytes(pid) if pid else None
                for line in octave.last_output():
                    context.log.info(line)
                status = extraction_status(layout, config.iterations)
                if status.state is not ExtractionState.COMPLETE:
                    raise RegionDataError(f"region {region}: extraction finished but {status.reason}")
            except Exception as exc:
                _record_failure(layout, exc)
                context.log.error(f"region {region}: extraction failed; raw data kept in {layout.raw_dir}")
                raise
        watch.lap("extraction_s")
        status = extraction_status(layout, config.iterations)
        disk.sample()
        raw_deleted = False
        freed = 0
        if not config.keep_raw and layout.raw_dir.exists():
            freed = delete_raw(layout)
            raw_deleted = True
            context.log.info(f"region {region}: deleted raw data ({freed / 1e6:.1f} MB)")
        watch.lap("cleanup_s")

    shapes = clip_shapes(layout, status.total_clips)
    expected_shape = ((500, N_FS_REGIONS), "single")
    shapes_ok = set(shapes) <= {expected_shape}
    count_ok = (
        status.total_clips
        == sum(status.clips_per_iteration.values())
        == len(list(layout.clip_dir.glob("nmm_*.mat")))
    )
    raw_ok = config.keep_raw or not layout.raw_dir.exists()
    context.log.info(
        f"region {region}: {status.total_clips} clips "
        f"({', '.join(f'iter{m}: {n}' for m, n in status.clips_per_iteration.items())})"
    )
    metadata: dict[str, object] = {
        "region": region,
        "clip_dir": dg.MetadataValue.path(str(layout.clip_dir)),
        "clips_per_iteration": dg.MetadataValue.json(
            {str(m): n for m, n in status.clips_per_iteration.items()}
        ),
        "total_clips": status.total_clips,
        "adopted_existing_clips": adopted,
        "raw_deleted": raw_deleted,
        "raw_bytes_freed": freed,
        "peak_disk_bytes": disk.peak_bytes,
        "clip_bytes": tree_size_bytes(layout.clip_dir),
        "window_cache_bytes": (
            layout.window_cache_path.stat().st_size if layout.window_cache_path.is_file() else 0
        ),
        "backend": octave.backend,
        "leadfield": config.leadfield_name,
        "python_peak_rss_bytes": self_peak_rss_bytes(),
        **{k: v for k, v in watch.laps.items()},
    }
    if octave_peak_rss is not None:
        metadata["octave_peak_rss_bytes"] = octave_peak_rss
    plot = _clip_plot(layout, status.total_clips, region)
    if plot is not None:
        metadata["clips_plot"] = plot
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_CLIP_SHAPES,
                passed=shapes_ok,
                metadata={"shapes": dg.MetadataValue.json({f"{s} {c}": n for (s, c), n in shapes.items()})},
            ),
            dg.AssetCheckResult(
                check_name=CHECK_CLIP_COUNT,
                passed=count_ok,
                metadata={"markers_total": status.total_clips},
            ),
            dg.AssetCheckResult(
                check_name=CHECK_RAW_CLEANED,
                passed=raw_ok,
                metadata={"keep_raw": config.keep_raw, "raw_exists": layout.raw_dir.exists()},
            ),
        ],
    )


DEEPSIF_REGION_ASSETS = [raw_nmm, nmm_spikes]
