"""Figures of the DeepSIF assets (pure; no Dagster): a region on the inflated cortex, its simulated activity and
clips, and the synthetic source (clips per region on the cortex, patch-size and SNR distributions, one sample's
sources on the cortex).

The cortex is drawn as four flat-shaded 2-D views (each hemisphere from the side and from the midline) with a
painter's algorithm: triangles facing away are dropped, the rest drawn far to near. That is one
``PolyCollection`` per view, well under a second for the 20 484-vertex surface, where a 3-D ``plot_trisurf``
takes several and hides the medial wall.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuro_core.plots import count_label, figure_png, new_figure, styled, whole_number_ticks

INFLATED_FILE = "fs_cortex_20k_inflated.mat"
REGION_MAPPING_FILE = "fs_cortex_20k_region_mapping.mat"
PAD_REGION = 15213  # selected_region's filler (generator.NAN_NUMBER)
HIGHLIGHT = (0.84, 0.15, 0.16, 1.0)  # the excited region
UNPAINTED = np.array([0.80, 0.80, 0.80, 1.0])  # regions without a value: shaded grey
# (name, hemisphere, x of the direction towards the viewer): the inflated hemispheres are each centred on the
# origin, so every view looks along ±x at one of them, anterior to the left in the left-side views.
VIEWS = (
    ("left hemisphere, lateral", 0, -1.0),
    ("right hemisphere, lateral", 1, 1.0),
    ("left hemisphere, medial", 0, 1.0),
    ("right hemisphere, medial", 1, -1.0),
)
HEMISPHERES = ("left", "right")
MAX_RINGED_REGIONS = 12


@dataclass(frozen=True)
class CortexSurface:
    """The inflated cortex: vertices, 0-based triangles, the region of every vertex and of every triangle."""

    pos: np.ndarray  # (n_vertices, 3) mm
    tri: np.ndarray  # (n_triangles, 3) 0-based vertex indices
    region_of_vertex: np.ndarray  # (n_vertices,) 0-based region ids
    n_left: int  # vertices 0 … n_left − 1 are the left hemisphere

    @functools.cached_property
    def region_of_triangle(self) -> np.ndarray:
        """Each triangle's region: the region of at least two of its vertices, else of its first."""
        r = self.region_of_vertex[self.tri]
        return np.where(r[:, 1] == r[:, 2], r[:, 1], r[:, 0])

    @functools.cached_property
    def hemisphere_of_triangle(self) -> np.ndarray:
        return (self.tri[:, 0] >= self.n_left).astype(np.int8)

    @functools.cached_property
    def normals(self) -> np.ndarray:
        """Outward face normals (unit length; the surface's triangles are wound outward)."""
        p = self.pos[self.tri]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

    @property
    def n_regions(self) -> int:
        return int(self.region_of_vertex.max()) + 1

    def hemisphere_of_region(self, region: int) -> int:
        vertices = np.flatnonzero(self.region_of_vertex == region)
        if not len(vertices):
            raise ValueError(f"region {region} has no vertex on the cortex (regions 0…{self.n_regions - 1})")
        return int(np.mean(vertices >= self.n_left) > 0.5)


@functools.lru_cache(maxsize=4)
def _load_cortex(inflated: str, mapping: str, _stamps: tuple[float, float]) -> CortexSurface:
    import scipy.io

    surface = scipy.io.loadmat(inflated, variable_names=["pos", "tri", "posl"])
    rm = scipy.io.loadmat(mapping, variable_names=["rm"])["rm"]
    pos = np.asarray(surface["pos"], dtype=np.float64)
    tri = np.asarray(surface["tri"], dtype=np.int64) - 1  # MATLAB's 1-based
    region = np.asarray(rm, dtype=np.int64).ravel()
    if (
        pos.ndim != 2
        or pos.shape[1] != 3
        or len(region) != len(pos)
        or tri.min() < 0
        or tri.max() >= len(pos)
    ):
        raise ValueError(
            f"{inflated} / {mapping}: expected pos (n, 3), 1-based tri into it and rm of length n; got pos "
            f"{pos.shape}, tri {int(tri.min()) + 1}…{int(tri.max()) + 1}, rm {region.shape}"
        )
    n_left = len(surface["posl"]) if "posl" in surface else len(pos) // 2
    return CortexSurface(pos=pos, tri=tri, region_of_vertex=region, n_left=int(n_left))


def load_cortex(anatomy_dir: str | Path) -> CortexSurface:
    """The inflated cortex and region mapping of ``anatomy_dir`` (cached while the files are unchanged)."""
    inflated, mapping = Path(anatomy_dir) / INFLATED_FILE, Path(anatomy_dir) / REGION_MAPPING_FILE
    return _load_cortex(str(inflated), str(mapping), (inflated.stat().st_mtime, mapping.stat().st_mtime))


# ------------------------------------------------------------------------------------------------ cortex views


def _shade(colours: np.ndarray, normals: np.ndarray, towards: np.ndarray) -> np.ndarray:
    """Lambert shading with the light at the viewer: 55 % ambient, 45 % diffuse."""
    lit = 0.55 + 0.45 * np.clip(normals @ towards, 0.0, 1.0)
    out = colours.copy()
    out[:, :3] *= lit[:, None]
    return out


def draw_cortex_views(
    axes: Sequence[Any], surface: CortexSurface, face_colours: np.ndarray, shaded: np.ndarray
) -> list[np.ndarray]:
    """Draw :data:`VIEWS` into ``axes`` (four): triangles coloured ``face_colours`` (n_triangles, 4), the ones
    where ``shaded`` is True shaded by their orientation. Returns the triangle indices drawn in each view."""
    from matplotlib.collections import PolyCollection

    drawn = []
    for ax, (name, hemisphere, towards_x) in zip(axes, VIEWS, strict=True):
        towards = np.array([towards_x, 0.0, 0.0])
        faces = np.flatnonzero(
            (surface.hemisphere_of_triangle == hemisphere) & (surface.normals @ towards > 0.0)
        )
        corners = surface.pos[surface.tri[faces]]  # (k, 3, 3)
        faces = faces[np.argsort(corners.mean(axis=1) @ towards)]  # far first
        corners = surface.pos[surface.tri[faces]]
        flat = np.stack(
            [corners[..., 1] * towards_x, corners[..., 2]], axis=-1
        )  # (k, 3, 2): anterior, superior
        colours = face_colours[faces].copy()
        lit = shaded[faces]
        colours[lit] = _shade(colours[lit], surface.normals[faces][lit], towards)
        # Not anti-aliased: no hairline seams between triangles, each pixel one face's exact colour (the PNG is
        # half the size, the highlight colour stays exact); at ~1 px per triangle the edges do not look jagged.
        surface_patches = PolyCollection(flat, facecolors=colours, linewidths=0, antialiased=False)
        # The limits are set below and the axes are off: measuring the 10,000 polygons for the data limits and the
        # layout's bounding boxes cost ≈ 0.08 of the ≈ 0.7 CPU-s of a region picture (the same PNG bytes without).
        surface_patches.set_in_layout(False)
        ax.add_collection(surface_patches, autolim=False)
        ax.set_xlim(flat[..., 0].min() - 2, flat[..., 0].max() + 2)
        ax.set_ylim(flat[..., 1].min() - 2, flat[..., 1].max() + 2)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(name)
        drawn.append(faces)
    return drawn


def _view_axes(fig: Any) -> list[Any]:
    return list(fig.subplots(2, 2).ravel())


def region_face_colours(
    surface: CortexSurface, regions: Sequence[int], colour: Any = HIGHLIGHT
) -> np.ndarray:
    """(n_triangles, 4) grey everywhere, ``colour`` on the triangles of ``regions``."""
    colours = np.tile(UNPAINTED, (len(surface.tri), 1))
    colours[np.isin(surface.region_of_triangle, list(regions))] = colour
    return colours


def _mark_region(axes: Sequence[Any], surface: CortexSurface, region: int, drawn: list[np.ndarray]) -> None:
    """A ring around the region in each view that shows it (a 20-vertex region is a dozen pixels wide)."""
    for ax, (_name, _hemisphere, towards_x), faces in zip(axes, VIEWS, drawn, strict=True):
        visible = faces[surface.region_of_triangle[faces] == region]
        if not len(visible):
            continue
        centre = surface.pos[surface.tri[visible]].reshape(-1, 3).mean(axis=0)
        ax.scatter(
            [centre[1] * towards_x], [centre[2]], s=900, facecolors="none", edgecolors="black", linewidths=1.5
        )


@styled()
def region_figure(surface: CortexSurface, region: int, title: str) -> Any:
    """Region ``region`` in red on the inflated cortex (four views), ringed where it is visible."""
    from matplotlib.patches import Patch

    colours = region_face_colours(surface, [region])
    shaded = surface.region_of_triangle != region  # the region keeps its exact colour
    fig = new_figure(height_in=5.6)
    axes = _view_axes(fig)
    drawn = draw_cortex_views(axes, surface, colours, shaded)
    _mark_region(axes, surface, region, drawn)
    n_vertices = int(np.sum(surface.region_of_vertex == region))
    hemisphere = HEMISPHERES[surface.hemisphere_of_region(region)]
    fig.legend(
        handles=[
            Patch(color=HIGHLIGHT, label=f"region {region}: {n_vertices} vertices, {hemisphere} hemisphere")
        ],
        loc="outside lower center",
    )
    fig.suptitle(title)
    return fig


def region_png(surface: CortexSurface, region: int, title: str) -> bytes:
    return figure_png(region_figure(surface, region, title))


# ------------------------------------------------------------------------------------------- region activity


@styled()
def activity_figure(time_ms: np.ndarray, trace_mv: np.ndarray, title: str) -> Any:
    """y1 − y2 (mV) of the excitable node over the previewed stretch."""
    fig = new_figure(height_in=3.4)
    ax = fig.subplots()
    ax.plot(np.asarray(time_ms) / 1000.0, np.asarray(trace_mv), lw=0.8, color="#1f4e79")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("y1 − y2 (mV)")
    ax.margins(x=0)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig


def activity_png(time_ms: np.ndarray, trace_mv: np.ndarray, title: str) -> bytes:
    return figure_png(activity_figure(time_ms, trace_mv, title))


@styled()
def clips_figure(source_traces: np.ndarray, sampling_rate_hz: float, total_clips: int, title: str) -> Any:
    """The source channel of a few clips, one colour each, over the clip's time axis."""
    from matplotlib import colormaps

    traces = np.atleast_2d(np.asarray(source_traces, dtype=float))
    fig = new_figure(height_in=3.8)
    ax = fig.subplots()
    t_ms = np.arange(traces.shape[1]) / sampling_rate_hz * 1000.0
    cmap = colormaps["viridis"]
    for i, trace in enumerate(traces):
        ax.plot(t_ms, trace, lw=0.9, color=cmap(i / max(len(traces) - 1, 1)), alpha=0.9)
    ax.set_xlabel("time in clip (ms)")
    ax.set_ylabel("source region (mV)")
    ax.margins(x=0)
    ax.grid(alpha=0.3)
    ax.set_title(
        f"{title}: {len(traces)} of {count_label(total_clips, 'clip')}, spread over the region's clips"
    )
    return fig


def clips_png(source_traces: np.ndarray, sampling_rate_hz: float, total_clips: int, title: str) -> bytes:
    return figure_png(clips_figure(source_traces, sampling_rate_hz, total_clips, title))


# ------------------------------------------------------------------------------------------ synthetic source


def integer_bins(values: np.ndarray, max_bins: int = 40) -> np.ndarray:
    """Histogram edges at half-integers, each bin a whole number of units wide (no bin splits an integer)."""
    values = np.asarray(values)
    low, high = int(np.floor(values.min())), int(np.ceil(values.max()))
    step = max(1, int(np.ceil((high - low + 1) / max_bins)))
    return np.arange(low, high + step + 1, step) - 0.5


@styled()
def clips_map_figure(surface: CortexSurface, clip_counts: Mapping[int, int], title: str) -> Any:
    """Clips per region painted on the cortex (grey: no clips used), and their histogram."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    values = np.full(surface.n_regions, np.nan)
    for region, n in clip_counts.items():
        values[int(region)] = n
    counts = np.array(list(clip_counts.values()), dtype=float)
    top = max(float(counts.max()) if len(counts) else 1.0, 1.0)
    norm = Normalize(vmin=0.0, vmax=top)
    cmap = colormaps["viridis"]
    per_face = values[surface.region_of_triangle]
    painted = np.isfinite(per_face)
    colours = np.tile(UNPAINTED, (len(surface.tri), 1))
    colours[painted] = cmap(norm(per_face[painted]))

    fig = new_figure(height_in=5.4)
    # Subfigures: constrained layout then keeps the suptitle clear of the views' titles.
    left, right = fig.subfigures(1, 2, width_ratios=[2.4, 1])
    axes = _view_axes(left)
    drawn = draw_cortex_views(axes, surface, colours, ~painted)
    if len(clip_counts) <= MAX_RINGED_REGIONS:  # a few small regions are easy to miss on the whole cortex
        for region in clip_counts:
            _mark_region(axes, surface, int(region), drawn)
    bar = left.colorbar(
        ScalarMappable(norm=norm, cmap=cmap), ax=axes, location="bottom", shrink=0.6, label="clips per region"
    )
    bar.locator = whole_number_ticks()
    bar.update_ticks()
    hist = right.subplots()
    hist.hist(counts, bins=integer_bins(counts), color="#4c72b0", edgecolor="white")
    hist.set_xlabel("clips per region")
    hist.set_ylabel("regions")
    hist.xaxis.set_major_locator(whole_number_ticks())
    hist.yaxis.set_major_locator(whole_number_ticks())
    hist.set_title(f"{count_label(len(counts), 'region')}, {count_label(int(counts.sum()), 'clip')}")
    fig.suptitle(title)
    return fig


def clips_map_png(surface: CortexSurface, clip_counts: Mapping[int, int], title: str) -> bytes:
    return figure_png(clips_map_figure(surface, clip_counts, title))


@styled()
def distributions_figure(patch_sizes: np.ndarray, sensor_snr: np.ndarray, scale_ratio: np.ndarray) -> Any:
    """Histograms of the patch size (regions per source), the sensor SNR (dB) and the scale ratio."""

    sizes = np.asarray(patch_sizes, dtype=int)
    fig = new_figure(height_in=3.4)
    size_ax, snr_ax, ratio_ax = fig.subplots(1, 3)
    size_ax.hist(sizes, bins=integer_bins(sizes), color="#4c72b0", edgecolor="white")
    size_ax.set(
        xlabel="regions per source patch",
        ylabel="source patches",
        title=f"patch size ({len(sizes):,} patches)",
    )
    size_ax.xaxis.set_major_locator(whole_number_ticks())
    levels, n = np.unique(np.asarray(sensor_snr).round().astype(int), return_counts=True)
    snr_ax.bar([str(v) for v in levels], n, color="#55a868")
    snr_ax.set(xlabel="sensor SNR (dB)", ylabel="samples", title="sensor SNR")
    ratios = np.asarray(scale_ratio, dtype=float)
    ratios = ratios[np.isfinite(ratios)]
    ratio_ax.hist(ratios, bins=40, color="#c44e52")
    ratio_ax.set(xlabel="scale ratio", ylabel="values", title="scale ratio")
    for ax in (size_ax, snr_ax, ratio_ax):
        ax.yaxis.set_major_locator(whole_number_ticks())
    return fig


def distributions_png(patch_sizes: np.ndarray, sensor_snr: np.ndarray, scale_ratio: np.ndarray) -> bytes:
    return figure_png(distributions_figure(patch_sizes, sensor_snr, scale_ratio))


def source_patches(selected_region: np.ndarray) -> list[np.ndarray]:
    """The regions of each source of one sample (``selected_region[s]``, (n_sources, 70)), pad removed."""
    rows = np.atleast_2d(np.asarray(selected_region))
    return [row[row != PAD_REGION].astype(int) for row in rows]


@styled()
def sources_figure(surface: CortexSurface, patches: Sequence[np.ndarray], title: str) -> Any:
    """One sample's source patches on the cortex, one colour per source; its centre region ringed."""
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    cmap = colormaps["tab10"]
    colours = np.tile(UNPAINTED, (len(surface.tri), 1))
    shaded = np.ones(len(surface.tri), dtype=bool)
    handles = []
    for k, patch in enumerate(patches):
        colour = cmap(k % cmap.N)
        faces = np.isin(surface.region_of_triangle, patch)
        colours[faces] = colour
        shaded[faces] = False
        centre = int(patch[0]) if len(patch) else -1
        size = count_label(len(patch), "region")
        handles.append(Patch(color=colour, label=f"source {k + 1}: {size} around region {centre}"))
    fig = new_figure(height_in=5.8)
    axes = _view_axes(fig)
    drawn = draw_cortex_views(axes, surface, colours, shaded)
    for patch in patches:
        if len(patch):
            _mark_region(axes, surface, int(patch[0]), drawn)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2))
    fig.suptitle(title)
    return fig


def sources_png(surface: CortexSurface, patches: Sequence[np.ndarray], title: str) -> bytes:
    return figure_png(sources_figure(surface, patches, title))
