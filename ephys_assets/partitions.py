"""The ``recordings`` dynamic partitions: one key per emitted job JSON."""

from __future__ import annotations

import dagster as dg

from neuro_pipelines.keys import validate_key

RECORDINGS = "recordings"
recordings_partitions = dg.DynamicPartitionsDefinition(name=RECORDINGS)


def validate_recording_key(key: str) -> str:
    """A recording key is a safe slug (see :func:`neuro_pipelines.keys.validate_key`)."""
    return validate_key(key, RECORDINGS)
