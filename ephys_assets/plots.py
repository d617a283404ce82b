"""Pictures of one recording job (pure; no Dagster): the probe as probeinterface draws it, contacts coloured by
channel group, and the recording's channels per group and samples per segment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuro_core.plots import count_label, figure_png, new_figure, styled, whole_number_ticks

ZOOM_MARGIN_UM = 60.0
MIN_ZOOM_WIDTH_TO_HEIGHT = 0.5


def group_colours(groups: Sequence[Any]) -> dict[Any, Any]:
    """One distinct colour per channel group (tab10, then tab20 beyond ten groups)."""
    from matplotlib import colormaps

    unique = sorted(set(groups), key=str)
    cmap = colormaps["tab10" if len(unique) <= 10 else "tab20"]
    return {group: cmap(i % cmap.N) for i, group in enumerate(unique)}


def contact_groups(probegroup: Any, channel_groups: np.ndarray) -> list[np.ndarray]:
    """The channel group of every contact, per probe (``device_channel_indices`` are the recording's channel
    indices, as ``recording.get_probegroup()`` sets them; unwired contacts, index −1, get group None)."""
    groups = np.asarray(channel_groups, dtype=object)
    out = []
    for probe in probegroup.probes:
        wiring = probe.device_channel_indices
        if wiring is None:
            out.append(np.full(probe.get_contact_count(), None, dtype=object))
            continue
        wiring = np.asarray(wiring)
        out.append(np.array([groups[i] if i >= 0 else None for i in wiring], dtype=object))
    return out


@styled()
def probe_figure(probegroup: Any, channel_groups: np.ndarray, title: str) -> Any:
    """Whole probe(s) (left) and the recorded contacts close up (right), drawn by
    :func:`probeinterface.plotting.plot_probegroup`: contours, shanks, contacts coloured by channel group, legend."""
    from matplotlib.patches import Patch, Rectangle
    from probeinterface.plotting import plot_probegroup

    per_probe = contact_groups(probegroup, channel_groups)
    all_groups = np.concatenate(per_probe)
    colours = group_colours([g for g in all_groups if g is not None])
    contact_colours = [colours.get(g, (0.75, 0.75, 0.75, 1.0)) for g in all_groups]

    fig = new_figure(height_in=6.0)
    overview, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2.2]})
    # Contours under the contacts (probeinterface adds the contour last, which would hide them when opaque).
    contact_style = {"edgecolor": "none", "lw": 0, "alpha": 1.0, "zorder": 3}
    shape_style = {"facecolor": "#e4e4e4", "edgecolor": "#555555", "lw": 0.8, "alpha": 1.0, "zorder": 1}
    for ax in (overview, zoom):
        plot_probegroup(
            probegroup,
            ax=ax,
            contacts_colors=contact_colours,
            contact_kwargs=contact_style,
            probe_shape_kwargs=shape_style,
        )
        ax.set_xlabel("x (µm)", fontsize=10)
        ax.set_ylabel("y (µm)", fontsize=10)
    # The close-up: every recorded contact, centred, true aspect; at least half as wide as tall so that one
    # shank's column (or a 4 mm Neuropixels 1.0 shank) keeps some context instead of becoming a sliver.
    positions = np.concatenate([p.contact_positions[:, :2] for p in probegroup.probes])
    (x0, y0), (x1, y1) = positions.min(axis=0), positions.max(axis=0)
    half_height = (y1 - y0) / 2 + ZOOM_MARGIN_UM
    half_width = max((x1 - x0) / 2 + ZOOM_MARGIN_UM, MIN_ZOOM_WIDTH_TO_HEIGHT * half_height)
    x_mid, y_mid = (x0 + x1) / 2, (y0 + y1) / 2
    zoom.set_xlim(x_mid - half_width, x_mid + half_width)
    zoom.set_ylim(y_mid - half_height, y_mid + half_height)
    zoom.set_aspect("equal", adjustable="box")
    overview.add_patch(
        Rectangle(
            (x_mid - half_width, y_mid - half_height),
            2 * half_width,
            2 * half_height,
            fill=False,
            edgecolor="black",
            lw=1.0,
            ls="--",
            zorder=4,
        )
    )
    # The overview of a whole probe is a few tens of pixels wide: room for one x tick.
    left, right = overview.get_xlim()
    overview.set_xticks([round((left + right) / 20) * 10])
    overview.set_title("whole probe")
    zoom.set_title("recorded contacts")
    counts = {g: int(np.sum(all_groups == g)) for g in colours}
    handles = [Patch(color=colours[g], label=f"group {g}: {counts[g]} channels") for g in colours]
    zoom.legend(handles=handles, title="channel group", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    names = ", ".join(_probe_name(p) for p in probegroup.probes)
    fig.suptitle(f"{title}\n{names}")
    return fig


def _probe_name(probe: Any) -> str:
    info = probe.annotations
    return str(info.get("model_name") or info.get("name") or info.get("manufacturer") or "probe")


def probe_png(probegroup: Any, channel_groups: np.ndarray, title: str) -> bytes:
    return figure_png(probe_figure(probegroup, channel_groups, title))


@styled()
def recording_figure(
    channel_groups: np.ndarray, samples_per_segment: Sequence[int], sampling_rate_hz: float, title: str
) -> Any:
    """Channels per channel group (left) and each segment's duration, labelled with its samples (right)."""
    groups, counts = np.unique(np.asarray(channel_groups).astype(str), return_counts=True)
    colours = group_colours(list(groups))
    samples = np.asarray(samples_per_segment, dtype=np.int64)
    durations = samples / float(sampling_rate_hz)

    fig = new_figure(height_in=max(3.0, 1.6 + 0.35 * max(len(groups), len(samples))))
    by_group, by_segment = fig.subplots(1, 2)
    bars = by_group.barh([f"group {g}" for g in groups], counts, color=[colours[g] for g in groups])
    by_group.bar_label(bars, padding=3)
    by_group.set_xlabel("channels")
    by_group.set_title(f"{count_label(int(counts.sum()), 'channel')} in {count_label(len(groups), 'group')}")
    by_group.xaxis.set_major_locator(whole_number_ticks())
    by_group.invert_yaxis()
    by_group.margins(x=0.2)

    bars = by_segment.barh([f"segment {k}" for k in range(len(samples))], durations, color="#4c72b0")
    labels = [f"{d:,.3g} s, {n:,} samples" for d, n in zip(durations, samples, strict=True)]
    by_segment.bar_label(bars, labels=labels, padding=3)
    by_segment.set_xlabel("duration (s)")
    by_segment.set_title(f"{count_label(len(samples), 'segment')} at {sampling_rate_hz:,.0f} Hz")
    by_segment.invert_yaxis()
    by_segment.margins(x=0.45)
    fig.suptitle(title)
    return fig


def recording_png(
    channel_groups: np.ndarray, samples_per_segment: Sequence[int], sampling_rate_hz: float, title: str
) -> bytes:
    return figure_png(recording_figure(channel_groups, samples_per_segment, sampling_rate_hz, title))
