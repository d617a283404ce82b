import base64
import os
import re

import numpy as np
import pytest

from neuro_core.measure import StepPeakRss
from neuro_core.plots import figure_png, new_figure
from neuro_pipelines.metadata import png_markdown


def _png() -> bytes:
    fig = new_figure(8.0, 2.0)
    fig.subplots().plot([0, 1], [1, 0])
    return figure_png(fig)


def test_png_markdown_shows_the_title_and_embeds_the_image():
    png = _png()
    text = png_markdown(png, 'Region 3 "excited" [left]').value
    heading, image = text.split("\n\n")
    assert heading == "**Region 3  excited   left**"
    match = re.fullmatch(r'!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+) "([^"]+)"\)', image)
    assert match, image
    assert match.group(1) == match.group(3) == "Region 3  excited   left"
    assert base64.b64decode(match.group(2)) == png


def test_png_markdown_refuses_anything_but_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        png_markdown(b"<svg/>", "x")


def _rss_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_step_peak_rss_is_the_blocks_own_peak_not_the_process_lifetime_peak():
    before = np.ones(400_000_000 // 8)  # a 400 MB peak before the step
    before[::512] = 2.0
    del before
    baseline = _rss_bytes()
    with StepPeakRss() as memory:
        during = np.ones(100_000_000 // 8)  # 100 MB touched inside the step
        during[::512] = 2.0
        del during
    assert memory.peak_bytes is not None
    assert baseline + 90e6 <= memory.peak_bytes < baseline + 300e6
