"""Metadata helpers shared by the assets of both domains: pictures as markdown."""

from __future__ import annotations

import base64
import re

import dagster as dg

PLOT_SUFFIX = "_plot"  # every picture's metadata key ends so (the browser test and readers find them by it)


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
