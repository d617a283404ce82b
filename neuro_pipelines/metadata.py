"""Metadata helpers shared by the assets of both domains."""

from __future__ import annotations

import base64

import dagster as dg


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    """Markdown metadata that shows ``png`` inline in the Dagster UI (the UI renders markdown metadata)."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{encoded})")
