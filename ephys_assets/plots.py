"""Probe/channel layout of one recording job, coloured by channel group."""

from __future__ import annotations

import numpy as np

from neuro_core.plots import figure_png, new_figure


def probe_layout_png(locations: np.ndarray, groups: np.ndarray | None, title: str) -> bytes:
    """Contact positions (µm) as a scatter plot, one colour per group; highlights nothing else."""
    locations = np.asarray(locations, dtype=float)
    if locations.ndim != 2 or locations.shape[1] < 2 or len(locations) == 0:
        raise ValueError(f"channel locations must be an (n_channels, 2) array, got shape {locations.shape}")
    fig, ax = new_figure(3.0, 4.0)
    group_values = np.zeros(len(locations), dtype=int) if groups is None else np.asarray(groups)
    for group in np.unique(group_values):
        mask = group_values == group
        ax.scatter(locations[mask, 0], locations[mask, 1], s=6, marker="s", label=f"group {group}")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_title(title, fontsize=8)
    if len(np.unique(group_values)) > 1:
        ax.legend(fontsize=6, markerscale=1.5, loc="best")
    return figure_png(fig)
