"""Metadata of the DeepSIF assets: typed values with units in their names, one key per fact, and pictures.

Also the small Dagster-side steps around the pure code that only exist to record things: the configuration
record a simulation starts with, the progress logger.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from deepsif_assets.extraction import ExtractionReport, raw_is_complete, source_traces
from deepsif_assets.fingerprint import (
    read_configuration,
    region_configuration,
    simulation_configuration,
)
from deepsif_assets.layout import CONFIGURATION_FILE, RegionLayout
from deepsif_assets.params import ExtractionParams, SimulationOptions, SyntheticParams
from deepsif_assets.plots import activity_png, clips_overlay_png, summary_pngs
from deepsif_assets.simulation.params import SimulationParams
from neuro_core.files import tree_size_bytes, write_json_atomic
from neuro_pipelines.metadata import png_markdown

CLIP_SAMPLING_HZ = 500.0  # dt = 0.5 ms and ×4 decimation
PROGRESS_EVERY_PCT = 10.0


def _mb(n_bytes: float) -> float:
    return round(n_bytes / 1e6, 1)


def batch_progress_logger(log: Any, label: str, regions: list[int]) -> Callable[[int, float], None]:
    """A ``progress(region, pct)`` callback that logs ``<label>: simulated <pct> %`` every 10 % of the batch
    (its slowest region: the lanes advance together)."""
    done = dict.fromkeys(regions, 0.0)
    last = {"pct": -PROGRESS_EVERY_PCT}

    def progress(region: int, pct: float) -> None:
        done[region] = pct
        batch = min(done.values())
        if batch >= last["pct"] + PROGRESS_EVERY_PCT or (batch >= 100.0 > last["pct"]):
            last["pct"] = batch
            log.info(f"{label}: simulated {batch:.0f} %")

    return progress


def start_raw_record(
    layout: RegionLayout, params: SimulationParams, options: SimulationOptions, connectivity: Path
) -> dict[str, Any]:
    """Invalidate the region's raw data, then record the configuration the new simulation runs with.

    ``_complete.json`` goes first, so a crash between the two never pairs old raw data with the new record.
    """
    layout.raw_complete_flag.unlink(missing_ok=True)
    configuration = simulation_configuration(params, options, connectivity)
    write_json_atomic(layout.raw_dir / CONFIGURATION_FILE, configuration)
    return configuration


def clip_configuration(layout: RegionLayout, params: ExtractionParams, leadfield: Path) -> dict[str, Any]:
    """The whole configuration the region's clips are (being) made with.

    From complete raw data: its simulation record plus these extraction options. Without raw data (adopting
    clips a killed run already finished): what was recorded beside those clips.
    """
    if raw_is_complete(layout):
        return region_configuration(read_configuration(layout.raw_dir / CONFIGURATION_FILE), params, leadfield)
    return read_configuration(layout.configuration_path) or region_configuration(None, params, leadfield)


def raw_metadata(
    result: Any, layout: RegionLayout, configuration: dict[str, Any], batch: list[int], batch_peak_disk_bytes: int
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "raw_dir": dg.MetadataValue.path(str(layout.raw_dir)),
        "engine": result.engine,
        "raw_format": result.raw_format,
        "excitable_tvb_node": result.excitable_tvb_node,
        "seeds": dg.MetadataValue.json({str(m): s for m, s in result.seeds.items()}),
        "files": len(result.files),
        "raw_mb": _mb(result.bytes_written),
        "batch_regions": dg.MetadataValue.json(batch),
        "batch_peak_disk_mb": _mb(batch_peak_disk_bytes),
        "simulated_steps": result.steps,
        "wall_time_s": round(result.wall_time_s, 1),
        "ms_per_step": round(result.ms_per_step, 4),
        "peak_abs_y1_minus_y2_after_transient_mv": dg.MetadataValue.json(
            {str(m): round(v, 2) for m, v in result.peak_abs_after_transient.items()}
        ),
        "simulation_configuration": dg.MetadataValue.json(configuration),
    }
    if result.preview_mv is not None and len(result.preview_mv):
        metadata["activity_plot"] = png_markdown(
            activity_png(
                result.preview_time_ms,
                result.preview_mv,
                f"region {result.region}: TVB node {result.excitable_tvb_node} after the transient",
            ),
            "Simulated activity at the excitable node",
        )
    return metadata


def clip_metadata(
    report: ExtractionReport, layout: RegionLayout, configuration: dict[str, Any], backend: str
) -> dict[str, Any]:
    status = report.status
    metadata: dict[str, Any] = {
        "clip_dir": dg.MetadataValue.path(str(layout.clip_dir)),
        "total_clips": status.total_clips,
        "clips_per_iteration": dg.MetadataValue.json({str(m): n for m, n in status.clips_per_iteration.items()}),
        "configuration_fingerprint": str(configuration.get("fingerprint")),
        "adopted_existing_clips": report.adopted,
        "raw_deleted": report.raw_deleted,
        "raw_freed_mb": _mb(report.raw_bytes_freed),
        "peak_disk_mb": _mb(report.peak_disk_bytes),
        "clips_mb": _mb(tree_size_bytes(layout.clip_dir)),
        "window_cache_mb": _mb(layout.window_cache_path.stat().st_size if layout.window_cache_path.is_file() else 0),
        "backend": backend,
        **{name: round(seconds, 2) for name, seconds in report.laps_s.items()},
    }
    if report.engine_peak_rss_bytes is not None:
        metadata["engine_peak_rss_mb"] = _mb(report.engine_peak_rss_bytes)
    if status.total_clips:
        metadata["clips_plot"] = png_markdown(
            clips_overlay_png(
                source_traces(layout, status.total_clips), CLIP_SAMPLING_HZ, f"region {layout.region}: source channel"
            ),
            "Clips of the source channel",
        )
    return metadata


def _compact(mapping: dict[int, int]) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(mapping.items())}


def synthetic_metadata(result: Any, choice: Any, params: SyntheticParams) -> dict[str, Any]:
    """Paths, counts, policy outcomes, provenance of the distance matrix, and pictures."""
    used_counts = {r: result.clip_counts[r] for r in result.regions_used}
    pngs = summary_pngs(used_counts, result.patch_sizes, result.sensor_snr, result.scale_ratio)
    sizes = result.patch_sizes
    metadata: dict[str, Any] = {
        "output_file": dg.MetadataValue.path(str(result.output_file)),
        "output_mb": _mb(result.output_file.stat().st_size),
        "n_samples": result.n_samples,
        "n_regions_used": len(result.regions_used),
        "regions_used": dg.MetadataValue.json(result.regions_used),
        "configuration_fingerprint": str(choice.fingerprint),
        "clips_per_region": dg.MetadataValue.json(_compact(used_counts)),
        "regions_skipped_too_few_clips": dg.MetadataValue.json(_compact(result.regions_skipped)),
        "regions_requested_not_materialized": dg.MetadataValue.json(choice.not_materialized),
        "regions_with_another_configuration": dg.MetadataValue.json(choice.other_configurations),
        "regions_with_fewer_than_nper_clips": len(result.regions_underfilled),
        "regions_read_from_window_cache": len(result.regions_window_cached),
        "nper": result.nper,
        "point_05": result.point_05,
        "patch_size_min": int(sizes.min()),
        "patch_size_median": float(np.median(sizes)),
        "patch_size_max": int(sizes.max()),
        "dis_matrix": dg.MetadataValue.path(str(result.dis_matrix.path)),
        "dis_matrix_derived": result.dis_matrix.derived,
        "config": dg.MetadataValue.json({k: list(v) if isinstance(v, tuple) else v for k, v in vars(params).items()}),
        "clips_per_region_plot": png_markdown(pngs["clips_per_region"], "Clips per region"),
        "distributions_plot": png_markdown(pngs["distributions"], "Patch size, sensor SNR, scale ratio"),
    }
    if result.clip_store is not None:
        metadata["clip_store"] = dg.MetadataValue.path(result.clip_store["path"])
        metadata["clip_store_clips"] = result.clip_store["n_clips"]
        metadata["clip_store_mb"] = _mb(result.clip_store["bytes"])
    return metadata
