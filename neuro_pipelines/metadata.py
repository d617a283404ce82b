"""Metadata helpers shared by the assets of both domains: pictures as markdown, a step's peak memory."""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path

import dagster as dg

PLOT_SUFFIX = "_plot"  # every picture's metadata key ends so (the browser test and readers find them by it)
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    """Markdown metadata that shows ``png`` inline in the Dagster UI under the heading ``title``.

    The UI lists long markdown as "[Show Markdown]" under the metadata key; the dialog it opens shows this
    heading and the picture, whose alt text and tooltip are the title too.
    """
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    plain = re.sub(r'["\[\]\n]', " ", title).strip()  # would end the alt text or the link title early
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f'**{plain}**\n\n![{plain}](data:image/png;base64,{encoded} "{plain}")')


def _vm_hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class StepPeakRss:
    """Peak resident memory of this process while the ``with`` block runs (``peak_bytes``; None if unknown).

    Linux resets a process' high-water mark (``VmHWM``) to its current RSS when "5" is written to
    ``/proc/self/clear_refs``; reading it at the end gives the step's own peak, not the worker process' lifetime
    peak (``ru_maxrss``) that earlier runs in the same process would set. Where the reset is refused, nothing is
    reported rather than a misleading lifetime figure.
    """

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self._reset = False

    def __enter__(self) -> StepPeakRss:
        with contextlib.suppress(OSError):
            _CLEAR_REFS.write_text("5")
            self._reset = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.peak_bytes = _vm_hwm_bytes() if self._reset else None
