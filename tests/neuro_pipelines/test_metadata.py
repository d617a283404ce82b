import base64

import numpy as np

from deepsif_assets.plots import activity_png, clips_overlay_png
from ephys_assets.plots import probe_layout_png
from neuro_core.plots import MAX_PNG_BYTES
from neuro_pipelines.metadata import png_markdown

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE)
    assert 1_000 < len(png) < MAX_PNG_BYTES


def test_figures_are_small_pngs():
    rng = np.random.default_rng(0)
    locations = np.column_stack([np.tile([0, 32], 48), np.repeat(np.arange(48) * 20, 2)])
    _check_png(probe_layout_png(locations, np.repeat([0, 1, 2, 3], 24), "probe"))
    t = np.arange(2000) * 0.5
    _check_png(activity_png(t, np.sin(t / 50), "node 0"))
    _check_png(clips_overlay_png(rng.normal(size=(5, 500)), 500.0, "clips"))


def test_png_markdown_embeds_the_image():
    png = activity_png(np.arange(10.0), np.arange(10.0), "x")
    text = png_markdown(png, "activity").value
    encoded = text.split("base64,")[1].rstrip(")")
    assert base64.b64decode(encoded) == png
