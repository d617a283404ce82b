"""Small PNG figures for asset metadata, rendered without a display (matplotlib Agg).

The Dagster UI renders markdown metadata, so a figure travels as an inline ``data:image/png`` image; figures are
kept to a few tens of KB (small size, low dpi, few colours).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import dagster as dg

MAX_PNG_BYTES = 120_000


def new_figure(width_in: float = 4.0, height_in: float = 3.0) -> tuple[Any, Any]:
    """A figure and axes on the Agg canvas (never opens a window)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=80)
    return fig, fig.add_subplot(1, 1, 1)


def figure_png(fig: Any) -> bytes:
    """Serialise ``fig`` to PNG bytes."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    """Markdown metadata that shows ``png`` inline in the Dagster UI."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{encoded})")
