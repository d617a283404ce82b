"""PNG figures rendered without a display (matplotlib Agg): the figure and serialisation helpers."""

from __future__ import annotations

import io
from typing import Any

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
