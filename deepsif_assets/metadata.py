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
import scipy.io

from deepsif_assets.extraction import ExtractionReport, raw_is_complete, source_traces
from deepsif_assets.fingerprint import (
    read_configuration,
    region_configuration,
    simulation_configuration,
)
from deepsif_assets.layout import CONFIGURATION_FILE, RegionLayout
from deepsif_assets.params import ExtractionParams, SimulationOptions, SyntheticParams
from deepsif_assets.plots import (
    INFLATED_FILE,
    REGION_MAPPING_FILE,
    CortexSurface,
    activity_png,
    clips_map_png,
    clips_png,
    distributions_png,
    load_cortex,
    region_png,
    source_patches,
    sources_png,
)
from deepsif_assets.simulation.params import SimulationParams
from neuro_core.files import tree_size_bytes, write_json_atomic
from neuro_core.measure import StepPeakRss
from neuro_core.plots import count_label
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
        return region_configuration(
            read_configuration(layout.raw_dir / CONFIGURATION_FILE), params, leadfield
        )
    return read_configuration(layout.configuration_path) or region_configuration(None, params, leadfield)


def _cortex_if_shipped(anatomy_dir: str | Path) -> CortexSurface | None:
    """The inflated cortex, or None when the anatomy folder lacks it (a simulation needs only the
    connectivity: a missing picture must not fail it)."""
    folder = Path(anatomy_dir)
    if not ((folder / INFLATED_FILE).is_file() and (folder / REGION_MAPPING_FILE).is_file()):
        return None
    return load_cortex(folder)


def raw_metadata(
    result: Any,
    layout: RegionLayout,
    configuration: dict[str, Any],
    batch: list[int],
    batch_peak_disk_bytes: int,
    anatomy_dir: str | Path,
    memory: StepPeakRss | None = None,
) -> dict[str, Any]:
    """What one region's simulation wrote and cost (disk and memory: of the whole batch it was simulated in), its
    configuration, and pictures of where and what."""
    metadata: dict[str, Any] = {
        "raw_dir": dg.MetadataValue.path(str(layout.raw_dir)),
        "engine": dg.MetadataValue.text(str(result.engine)),
        "raw_format": dg.MetadataValue.text(str(result.raw_format)),
        "excitable_tvb_node": dg.MetadataValue.int(int(result.excitable_tvb_node)),
        "seeds": dg.MetadataValue.json({str(m): s for m, s in result.seeds.items()}),
        "files": dg.MetadataValue.int(len(result.files)),
        "raw_mb": dg.MetadataValue.float(_mb(result.bytes_written)),
        "batch_regions": dg.MetadataValue.json(batch),
        "batch_peak_disk_mb": dg.MetadataValue.float(_mb(batch_peak_disk_bytes)),
        "simulated_steps": dg.MetadataValue.int(int(result.steps)),
        "wall_time_s": dg.MetadataValue.float(round(result.wall_time_s, 1)),
        "ms_per_step": dg.MetadataValue.float(float(f"{result.ms_per_step:.3g}")),
        "peak_abs_y1_minus_y2_after_transient_mv": dg.MetadataValue.json(
            {str(m): round(v, 2) for m, v in result.peak_abs_after_transient.items()}
        ),
        "simulation_configuration": dg.MetadataValue.json(configuration),
    }
    if memory is not None and memory.peak_bytes is not None:
        metadata["batch_peak_rss_mb"] = dg.MetadataValue.float(_mb(memory.peak_bytes))
    region = int(result.region)
    surface = _cortex_if_shipped(anatomy_dir)
    if surface is not None:
        metadata["region_plot"] = png_markdown(
            region_png(surface, region, f"Region {region} on the inflated cortex"),
            f"Region {region} (the excited region) on the inflated cortex",
        )
    if result.preview_mv is not None and len(result.preview_mv):
        metadata["activity_plot"] = png_markdown(
            activity_png(
                result.preview_time_ms,
                result.preview_mv,
                f"Region {region}: TVB node {result.excitable_tvb_node}, after the transient",
            ),
            f"Simulated activity of region {region}'s excitable node (y1 − y2, mV)",
        )
    return metadata


def clip_metadata(
    report: ExtractionReport, layout: RegionLayout, configuration: dict[str, Any], backend: str
) -> dict[str, Any]:
    """The region's clips: how many, where, what the extraction and clean-up did and cost, a picture."""
    status = report.status
    metadata: dict[str, Any] = {
        "clip_dir": dg.MetadataValue.path(str(layout.clip_dir)),
        "total_clips": dg.MetadataValue.int(int(status.total_clips)),
        "clips_per_iteration": dg.MetadataValue.json(
            {str(m): n for m, n in status.clips_per_iteration.items()}
        ),
        "configuration_fingerprint": dg.MetadataValue.text(str(configuration.get("fingerprint"))),
        "adopted_existing_clips": dg.MetadataValue.bool(bool(report.adopted)),
        "raw_deleted": dg.MetadataValue.bool(bool(report.raw_deleted)),
        "raw_freed_mb": dg.MetadataValue.float(_mb(report.raw_bytes_freed)),
        "peak_disk_mb": dg.MetadataValue.float(_mb(report.peak_disk_bytes)),
        "clips_mb": dg.MetadataValue.float(_mb(tree_size_bytes(layout.clip_dir))),
        "window_cache_mb": dg.MetadataValue.float(
            _mb(layout.window_cache_path.stat().st_size if layout.window_cache_path.is_file() else 0)
        ),
        "backend": dg.MetadataValue.text(backend),
        **{name: dg.MetadataValue.float(round(seconds, 2)) for name, seconds in report.laps_s.items()},
    }
    if report.engine_peak_rss_bytes is not None:
        # VmHWM of the Octave session the step started (the resource closes it after each run).
        metadata["engine_peak_rss_mb"] = dg.MetadataValue.float(_mb(report.engine_peak_rss_bytes))
    if status.total_clips:
        traces = source_traces(layout, status.total_clips)
        metadata["clips_plot"] = png_markdown(
            clips_png(traces, CLIP_SAMPLING_HZ, status.total_clips, f"Region {layout.region}"),
            f"Region {layout.region}: the source channel of {len(traces)} of its {count_label(status.total_clips, 'clip')}",
        )
    return metadata


def _compact(mapping: dict[int, int]) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(mapping.items())}


def _example_patches(output_file: Path, sample: int = 0) -> list[np.ndarray]:
    """The source patches of one sample of the written file (``selected_region[sample]``, pad removed)."""
    selected = scipy.io.loadmat(output_file, variable_names=["selected_region"])["selected_region"]
    return source_patches(selected[sample])


def synthetic_metadata(
    result: Any, choice: Any, params: SyntheticParams, anatomy_dir: str | Path
) -> dict[str, Any]:
    """Paths, counts, policy outcomes, provenance of the distance matrix, and pictures."""
    used_counts = {r: result.clip_counts[r] for r in result.regions_used}
    sizes = result.patch_sizes
    surface = load_cortex(anatomy_dir)
    patches = _example_patches(result.output_file)
    metadata: dict[str, Any] = {
        "output_file": dg.MetadataValue.path(str(result.output_file)),
        "output_mb": dg.MetadataValue.float(_mb(result.output_file.stat().st_size)),
        "n_samples": dg.MetadataValue.int(int(result.n_samples)),
        "n_regions_used": dg.MetadataValue.int(len(result.regions_used)),
        "regions_used": dg.MetadataValue.json(result.regions_used),
        "configuration_fingerprint": dg.MetadataValue.text(str(choice.fingerprint)),
        "clips_per_region": dg.MetadataValue.json(_compact(used_counts)),
        "regions_skipped_too_few_clips": dg.MetadataValue.json(_compact(result.regions_skipped)),
        "regions_requested_not_materialized": dg.MetadataValue.json(choice.not_materialized),
        "regions_with_another_configuration": dg.MetadataValue.json(choice.other_configurations),
        "regions_with_fewer_than_nper_clips": dg.MetadataValue.int(len(result.regions_underfilled)),
        "regions_read_from_window_cache": dg.MetadataValue.int(len(result.regions_window_cached)),
        "nper": dg.MetadataValue.int(int(result.nper)),
        "point_05": dg.MetadataValue.int(int(result.point_05)),
        "patch_size_min": dg.MetadataValue.int(int(sizes.min())),
        "patch_size_median": dg.MetadataValue.float(round(float(np.median(sizes)), 1)),
        "patch_size_max": dg.MetadataValue.int(int(sizes.max())),
        "dis_matrix": dg.MetadataValue.path(str(result.dis_matrix.path)),
        "dis_matrix_derived": dg.MetadataValue.bool(bool(result.dis_matrix.derived)),
        "config": dg.MetadataValue.json(
            {k: list(v) if isinstance(v, tuple) else v for k, v in vars(params).items()}
        ),
        "clips_per_region_plot": png_markdown(
            clips_map_png(surface, used_counts, "Clips per centre region (grey: not used)"),
            f"Clips per centre region on the cortex ({count_label(len(used_counts), 'region')} used)",
        ),
        "distributions_plot": png_markdown(
            distributions_png(result.patch_sizes, result.sensor_snr, result.scale_ratio),
            f"Patch size, sensor SNR and scale ratio over the {result.n_samples:,} samples",
        ),
        "example_sources_plot": png_markdown(
            sources_png(
                surface,
                patches,
                f"Sample 0 of {result.n_samples:,}: {count_label(len(patches), 'source patch')}",
            ),
            "Sample 0: its source patches on the cortex",
        ),
    }
    if result.clip_store is not None:
        metadata["clip_store"] = dg.MetadataValue.path(result.clip_store["path"])
        metadata["clip_store_clips"] = dg.MetadataValue.int(int(result.clip_store["n_clips"]))
        metadata["clip_store_mb"] = dg.MetadataValue.float(_mb(result.clip_store["bytes"]))
    return metadata
