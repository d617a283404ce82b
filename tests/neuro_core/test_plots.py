import io

import numpy as np
import pytest
from PIL import Image

from neuro_core.plots import (
    DPI,
    MAX_PNG_BYTES,
    MIN_WIDTH_PX,
    count_label,
    figure_pixels,
    figure_png,
    new_figure,
    png_size,
    small_texts,
    styled,
    whole_number_ticks,
)


@styled()
def _line_figure(label_pt: float | None = None):
    fig = new_figure(8.0, 3.0)
    ax = fig.subplots()
    ax.plot(np.arange(10), np.arange(10) ** 2, color=(1.0, 0.0, 0.0))
    ax.set_xlabel("x (s)", fontsize=label_pt)
    ax.set_title("a parabola")
    return fig


def test_png_is_120_dpi_960_px_wide_palette_image_and_keeps_pure_colours():
    png = figure_png(_line_figure())
    width, height, dpi = png_size(png)
    assert (width, height) == (8 * DPI, 3 * DPI)
    assert round(dpi) == DPI
    image = Image.open(io.BytesIO(png))
    assert image.size == (width, height) and round(image.info["dpi"][0]) == DPI
    assert image.mode == "P"  # quantized: the base64 in the metadata stays small
    assert len(png) < MAX_PNG_BYTES
    colours = {rgb for _count, rgb in image.convert("RGB").getcolors(maxcolors=1 << 16)}
    assert (255, 0, 0) in colours  # the line's exact red survives the palette


@styled()
def _layout_figure():
    fig = new_figure(8.6, 4.0)  # constrained layout: a legend outside, a title over two panels
    for i, ax in enumerate(fig.subplots(1, 2)):
        ax.plot(np.arange(50), np.sin(np.arange(50) / (3 + i)), label=f"line {i}")
        ax.fill_between(np.arange(50), -1, 0, alpha=0.3)
    fig.legend(loc="outside lower center")
    fig.suptitle("two panels")
    return fig


@pytest.mark.parametrize("make", [_line_figure, _layout_figure])
def test_pixels_are_those_savefig_writes(make):
    with styled():
        saved = io.BytesIO()
        make().savefig(saved, format="png", dpi=DPI, facecolor="white")
    reference = np.asarray(Image.open(saved).convert("RGB"))
    drawn = np.asarray(figure_pixels(make()))
    assert drawn.shape == reference.shape
    assert np.array_equal(drawn, reference)


def test_new_figure_refuses_pictures_narrower_than_the_minimum():
    with pytest.raises(ValueError, match="px"):
        new_figure((MIN_WIDTH_PX - 1) / DPI, 3.0)


def test_small_texts_finds_text_below_nine_points():
    assert small_texts(_line_figure()) == []
    assert small_texts(_line_figure(label_pt=6)) == ["'x (s)' at 6 pt"]


def test_png_size_rejects_other_files_and_corrupt_chunks():
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))
    png = bytearray(figure_png(_line_figure()))
    png[20] ^= 0xFF  # inside IHDR (the width), so its CRC no longer matches
    with pytest.raises(ValueError, match="corrupt"):
        png_size(bytes(png))


def test_count_labels_and_whole_number_ticks():
    assert [count_label(n, "clip") for n in (1, 2)] == ["1 clip", "2 clips"]
    assert count_label(1200, "source patch") == "1,200 source patches"
    # One bar at 1 (axis 0.45…1.55): the case where a plain integer MaxNLocator falls back to 0.15 steps.
    ticks = whole_number_ticks().tick_values(0.45, 1.55)
    assert ticks.tolist() and all(t == int(t) for t in ticks)
