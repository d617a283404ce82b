"""Figures for the DeepSIF assets: simulated activity, extracted clips, the synthetic source."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neuro_core.plots import figure_png, new_figure


def activity_png(time_ms: np.ndarray, trace_mv: np.ndarray, title: str) -> bytes:
    """A short stretch of y1 − y2 (mV) at one node."""
    fig, ax = new_figure(5.0, 2.2)
    ax.plot(np.asarray(time_ms) / 1000.0, np.asarray(trace_mv), lw=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("y1 − y2 (mV)")
    ax.set_title(title, fontsize=8)
    return figure_png(fig)


def clips_overlay_png(source_traces: np.ndarray, sampling_rate_hz: float, title: str) -> bytes:
    """Source-channel waveforms of a few clips, overlaid; ``source_traces`` is (n_clips, n_samples)."""
    traces = np.atleast_2d(np.asarray(source_traces, dtype=float))
    fig, ax = new_figure(4.0, 2.6)
    t_ms = np.arange(traces.shape[1]) / sampling_rate_hz * 1000.0
    for trace in traces:
        ax.plot(t_ms, trace, lw=0.7, alpha=0.8)
    ax.set_xlabel("time in clip (ms)")
    ax.set_ylabel("source (mV)")
    ax.set_title(title, fontsize=8)
    return figure_png(fig)


def summary_pngs(
    clip_counts: Mapping[int, int], patch_sizes: np.ndarray, sensor_snr: np.ndarray, scale_ratio: np.ndarray
) -> dict[str, bytes]:
    """PNG bytes of: clips per region, patch-size histogram, sensor-SNR and scale-ratio histograms."""
    from matplotlib.figure import Figure

    pngs: dict[str, bytes] = {}
    fig = Figure(figsize=(6, 2.5))
    ax = fig.subplots()
    regions = sorted(clip_counts)
    ax.bar(regions, [clip_counts[r] for r in regions], width=1.0)
    ax.set(xlabel="region", ylabel="clips", title="clips per region")
    fig.tight_layout()
    pngs["clips_per_region"] = figure_png(fig)

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
    pngs["distributions"] = figure_png(fig)
    return pngs
