"""Figures for DeepSIF assets: simulated activity at the excitable node and extracted clips."""

from __future__ import annotations

import numpy as np

from neuro_pipelines.plots import figure_png, new_figure


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
