import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from deepsif_assets.plots import (
    HIGHLIGHT,
    PAD_REGION,
    UNPAINTED,
    VIEWS,
    activity_figure,
    clips_figure,
    clips_map_figure,
    distributions_figure,
    integer_bins,
    load_cortex,
    region_face_colours,
    region_figure,
    region_png,
    source_patches,
    sources_figure,
)
from neuro_core.plots import DPI, MAX_PNG_BYTES, MIN_WIDTH_PX, png_size, small_texts
from neuro_core.project import PROJECT_ROOT

ANATOMY = PROJECT_ROOT / "data" / "deepsif-anatomy"


@pytest.fixture(scope="module")
def cortex():
    return load_cortex(ANATOMY)


def _views(fig) -> list:
    """The four cortex views' face colours, in VIEWS order."""
    views = [ax for ax in fig.axes if ax.get_title() in {name for name, _h, _x in VIEWS}]
    assert [ax.get_title() for ax in views] == [name for name, _h, _x in VIEWS]
    return [next(c for c in ax.collections if isinstance(c, PolyCollection)).get_facecolor() for ax in views]


def test_the_shipped_cortex_is_two_hemispheres_of_994_regions(cortex):
    assert cortex.pos.shape == (20484, 3) and cortex.tri.shape == (40960, 3)
    assert cortex.tri.min() == 0 and cortex.tri.max() == 20483  # 1-based in the file
    assert cortex.n_regions == 994 and cortex.n_left == 10242
    # Every triangle lies in one hemisphere, and a triangle's region is one of its vertices' regions.
    assert np.all((cortex.tri >= cortex.n_left).all(1) | (cortex.tri < cortex.n_left).all(1))
    assert np.all((cortex.region_of_vertex[cortex.tri] == cortex.region_of_triangle[:, None]).any(1))


def test_region_faces_get_the_highlight_colour_in_its_hemisphere_only(cortex):
    region = 0
    hemisphere = cortex.hemisphere_of_region(region)
    colours = region_face_colours(cortex, [region])
    in_region = cortex.region_of_triangle == region
    assert in_region.sum() > 10
    assert np.all(colours[in_region] == HIGHLIGHT) and np.all(colours[~in_region] == UNPAINTED)

    fig = region_figure(cortex, region, "Region 0")
    highlighted = [int(np.all(np.isclose(c, HIGHLIGHT), axis=1).sum()) for c in _views(fig)]
    shown_in = {h for (_name, h, _x), n in zip(VIEWS, highlighted, strict=True) if n}
    assert shown_in == {hemisphere}  # drawn where the region is, nowhere else
    assert 0 < max(highlighted) <= in_region.sum()  # the region's faces that face the viewer
    # Grey elsewhere is shaded (darker than the unlit grey at the rim), never the highlight.
    greys = np.concatenate(_views(fig))
    greys = greys[~np.all(np.isclose(greys, HIGHLIGHT), axis=1)]
    assert np.allclose(greys[:, 0], greys[:, 2]) and greys[:, 0].min() < UNPAINTED[0] * 0.7
    legend_text = fig.legends[0].get_texts()[0].get_text()
    assert legend_text.startswith(f"region {region}: ") and ("left" in legend_text or "right" in legend_text)
    assert small_texts(fig) == []


def test_region_png_is_wide_sharp_and_a_few_hundred_kb_at_most(cortex):
    png = region_png(cortex, 500, "Region 500")
    width, _height, dpi = png_size(png)
    assert width >= MIN_WIDTH_PX and round(dpi) == DPI and len(png) < MAX_PNG_BYTES


def test_unknown_region_is_refused(cortex):
    with pytest.raises(ValueError, match="region 5000"):
        region_figure(cortex, 5000, "nowhere")


def test_activity_and_clip_figures_are_legible():
    t = np.arange(4000) * 0.5
    fig = activity_figure(t, np.sin(t / 40.0), "Region 3")
    assert fig.axes[0].get_xlabel() == "simulated time (s)" and small_texts(fig) == []
    fig = clips_figure(np.random.default_rng(0).normal(size=(6, 500)), 500.0, 40, "Region 3")
    ax = fig.axes[0]
    assert len(ax.lines) == 6 and ax.get_xlim() == (0.0, 998.0)  # 500 samples at 500 Hz, in ms
    assert "6 of 40 clips" in ax.get_title() and small_texts(fig) == []


def _tick_labels(ax, axis: str = "x") -> list[str]:
    ax.figure.canvas.draw()
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text().replace("−", "-") for t in ticks if t.get_text()]


@pytest.mark.parametrize("counts", [{3: 2, 4: 1, 700: 7}, {0: 1}])
def test_clips_map_paints_used_regions_and_has_whole_number_ticks(cortex, counts):
    fig = clips_map_figure(cortex, counts, "Clips per region")
    faces = np.concatenate(_views(fig))
    assert (~np.all(np.isclose(faces[:, :3], faces[:, [1, 2, 0]]), axis=1)).any()  # some faces are coloured
    colourbar = next(ax for ax in fig.axes if ax.get_xlabel() == "clips per region" and not ax.patches)
    histogram = next(ax for ax in fig.axes if ax.patches)
    for labels in (_tick_labels(colourbar), _tick_labels(histogram), _tick_labels(histogram, "y")):
        assert labels and all(label.lstrip("-").isdigit() for label in labels), labels
    assert sum(p.get_height() for p in histogram.patches) == len(counts)
    assert small_texts(fig) == []


def test_integer_bins_never_split_a_whole_number():
    assert integer_bins(np.array([1, 2, 2, 5])).tolist() == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    edges = integer_bins(np.arange(1000), max_bins=40)
    assert len(edges) <= 42 and np.all(np.diff(edges) == np.diff(edges)[0]) and edges[0] == -0.5


def test_distributions_show_patch_size_snr_and_scale_ratio():
    fig = distributions_figure(
        np.array([3, 3, 7, 12]), np.array([5, 10, 10, 20]), np.array([0.1, np.inf, 0.7])
    )
    size_ax, snr_ax, _ratio_ax = fig.axes
    assert [t.get_text() for t in snr_ax.get_xticklabels()] == ["5", "10", "20"]
    assert [p.get_height() for p in snr_ax.patches] == [1, 2, 1]
    assert sum(p.get_height() for p in size_ax.patches) == 4
    assert all(label.lstrip("-").isdigit() for label in _tick_labels(size_ax))
    assert small_texts(fig) == []


def test_sample_sources_are_drawn_one_colour_each(cortex):
    selected = np.full((2, 70), PAD_REGION, dtype=float)
    selected[0, :3] = [10, 11, 12]
    selected[1, :1] = [600]
    patches = source_patches(selected)
    assert [p.tolist() for p in patches] == [[10, 11, 12], [600]]
    fig = sources_figure(cortex, patches, "Sample 0")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["source 1: 3 regions around region 10", "source 2: 1 region around region 600"]
    faces = np.concatenate(_views(fig))
    source_colours = {tuple(np.round(h.get_facecolor(), 3)) for h in fig.legends[0].legend_handles}
    drawn = {tuple(c) for c in np.round(faces, 3)}
    assert source_colours <= drawn
