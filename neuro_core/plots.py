"""PNG figures rendered without a display (matplotlib Agg): the figure and serialisation helpers.

Every picture the assets attach is made here the same way: a figure at :data:`DPI` at least
:data:`MIN_WIDTH_PX` wide, text no smaller than :data:`MIN_FONT_PT`, saved as a palette PNG (256 colours are
plenty for line plots and flat-shaded surfaces, and make the base64 in the run's metadata 3–4× smaller).
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

DPI = 120
MIN_WIDTH_PX = 800
# 1032 px: the whole picture fits the Dagster UI's metadata dialog in a 1400 px wide window (no sideways scroll).
WIDTH_IN = 8.6
MIN_FONT_PT = 9.0
MAX_PNG_BYTES = 300_000  # each picture travels base64-encoded in the event log and the UI
STYLE = {
    "font.size": 10.0,
    "axes.titlesize": 11.0,
    "axes.labelsize": 10.0,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "legend.fontsize": 9.0,
    "figure.titlesize": 12.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def new_figure(width_in: float = WIDTH_IN, height_in: float = 4.0) -> Any:
    """An empty figure on the Agg canvas (never opens a window, never touches pyplot's global state)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    if width_in * DPI < MIN_WIDTH_PX:
        raise ValueError(
            f"a {width_in} in wide figure is {width_in * DPI:.0f} px at {DPI} dpi (< {MIN_WIDTH_PX})"
        )
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def styled() -> Any:
    """Context manager (or decorator) applying :data:`STYLE`: text artists take their size when created, so the
    whole drawing, and the saving (ticks are made then), runs inside it."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def figure_pixels(fig: Any) -> Any:
    """``fig`` drawn at :data:`DPI` on white, as an RGB image: the pixels ``fig.savefig(…, dpi=DPI,
    facecolor="white")`` writes (tests), without encoding and decoding a full-colour PNG on the way (≈ 0.2 of the
    ≈ 1 CPU-s a region's pictures took)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig.set_dpi(DPI)
    fig.set_facecolor("white")
    canvas = FigureCanvasAgg(fig)
    with styled():
        canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")


def figure_png(fig: Any, colours: int = 256) -> bytes:
    """``fig`` as PNG bytes at :data:`DPI` (recorded in the file), reduced to a ``colours``-colour palette."""
    from PIL import Image

    image = figure_pixels(fig)
    # Median-cut on RGB keeps the few saturated colours of the data and the greys of text and surfaces.
    palette = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="png", optimize=True, dpi=(DPI, DPI))
    return out.getvalue()


def whole_number_ticks() -> Any:
    """A tick locator for counts: whole numbers only, even when the axis spans a single one."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True, min_n_ticks=1)


def count_label(n: int, noun: str) -> str:
    """``1 clip``, ``2 clips``, ``3 source patches``."""
    if n == 1:
        return f"{n:,} {noun}"
    return f"{n:,} {noun}es" if noun.endswith(("ch", "sh", "s", "x")) else f"{n:,} {noun}s"


def png_size(png: bytes) -> tuple[int, int, float | None]:
    """(width px, height px, dpi or None) read from the PNG header and its pHYs chunk (no decoder needed)."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    dpi = None
    offset = 8
    while offset + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        data = png[offset + 8 : offset + 8 + length]
        crc = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])[0]
        if crc != zlib.crc32(kind + data):
            raise ValueError(f"PNG chunk {kind!r} is corrupt")
        if kind == b"pHYs":
            per_x, _per_y, unit = struct.unpack(">IIB", data)
            dpi = per_x * 0.0254 if unit == 1 else None  # unit 1 = pixels per metre
        if kind in (b"IDAT", b"IEND"):
            break
        offset += 12 + length
    return width, height, dpi


def small_texts(fig: Any, min_pt: float = MIN_FONT_PT) -> list[str]:
    """The visible, non-empty texts of ``fig`` set smaller than ``min_pt`` (drawn first, so ticks exist)."""
    from matplotlib.text import Text

    with styled():
        fig.canvas.draw()
    return [
        f"{t.get_text()!r} at {t.get_fontsize():g} pt"
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < min_pt
    ]
