"""Dagster metadata for a synthetic-source result (kept apart from the pure pipeline)."""

from __future__ import annotations

from typing import Any

import dagster as dg
import numpy as np

from deepsif_assets.synthetic.clips import NMM_IDX_FORMULA
from deepsif_assets.synthetic.pipeline import SyntheticResult
from deepsif_assets.synthetic.plots import markdown_image, summary_pngs


def _compact(mapping: dict[int, int]) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(mapping.items())}


def synthetic_metadata(
    result: SyntheticResult, config: dict[str, Any], not_materialized: list[int]
) -> dict[str, Any]:
    """Paths, counts, policy outcomes, provenance of the distance matrix, and two small plots."""
    pngs = summary_pngs(
        {r: result.clip_counts[r] for r in result.regions_used},
        result.patch_sizes,
        result.sensor_snr,
        result.scale_ratio,
    )
    sizes = result.patch_sizes
    metadata: dict[str, Any] = {
        "output_file": dg.MetadataValue.path(str(result.output_file)),
        "output_bytes": result.output_file.stat().st_size,
        "n_samples": result.n_samples,
        "n_regions_used": len(result.regions_used),
        "regions_used": dg.MetadataValue.json(result.regions_used),
        "clips_per_region": dg.MetadataValue.json(
            _compact({r: result.clip_counts[r] for r in result.regions_used})
        ),
        "regions_skipped_too_few_clips": dg.MetadataValue.json(_compact(result.regions_skipped)),
        "regions_requested_not_materialized": dg.MetadataValue.json(not_materialized),
        "regions_with_fewer_than_nper_clips": len(result.regions_underfilled),
        "regions_read_from_window_cache": len(result.regions_window_cached),
        "nper": result.nper,
        "point_05": result.point_05,
        "patch_size_min_median_max": dg.MetadataValue.json(
            [int(sizes.min()), float(np.median(sizes)), int(sizes.max())]
        ),
        "dis_matrix": dg.MetadataValue.path(str(result.dis_matrix.path)),
        "dis_matrix_derived": result.dis_matrix.derived,
        "mag_change_basis": result.dis_matrix.description,
        "nmm_idx_formula": NMM_IDX_FORMULA,
        "config": dg.MetadataValue.json(config),
        "plot_clips_per_region": dg.MetadataValue.md(
            markdown_image(pngs["clips_per_region"], "clips per region")
        ),
        "plot_distributions": dg.MetadataValue.md(markdown_image(pngs["distributions"], "patch size, SNR")),
    }
    if result.clip_store is not None:
        metadata["clip_store"] = dg.MetadataValue.path(result.clip_store["path"])
        metadata["clip_store_n_clips"] = result.clip_store["n_clips"]
        metadata["clip_store_bytes"] = result.clip_store["bytes"]
    return metadata
