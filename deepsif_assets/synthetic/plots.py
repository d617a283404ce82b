"""Small PNG summaries of a synthetic-source dataset (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import numpy as np


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    return buffer.getvalue()


def summary_pngs(
    clip_counts: Mapping[int, int], patch_sizes: np.ndarray, sensor_snr: np.ndarray, scale_ratio: np.ndarray
) -> dict[str, bytes]:
    """PNG bytes of: clips per region, patch-size histogram, sensor-SNR and scale-ratio histograms."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    pngs: dict[str, bytes] = {}
    fig = Figure(figsize=(6, 2.5))
    ax = fig.subplots()
    regions = sorted(clip_counts)
    ax.bar(regions, [clip_counts[r] for r in regions], width=1.0)
    ax.set(xlabel="region", ylabel="clips", title="clips per region")
    fig.tight_layout()
    pngs["clips_per_region"] = _png(fig)

    fig = Figure(figsize=(6, 2.5))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.hist(patch_sizes, bins=range(0, int(patch_sizes.max()) + 2))
    ax1.set(xlabel="regions per patch", title="patch size")
    levels, n = np.unique(sensor_snr, return_counts=True)
    ax2.bar([str(int(v)) for v in levels], n)
    ax2.set(xlabel="dB", title="sensor SNR")
    ax3.hist(scale_ratio[np.isfinite(scale_ratio)], bins=40)
    ax3.set(xlabel="scale ratio", title="scale_ratio")
    fig.tight_layout()
    pngs["distributions"] = _png(fig)
    return pngs


def markdown_image(png: bytes, alt: str) -> str:
    """An inline base64 markdown image."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
