"""The ``recordings`` dynamic partitions: one key per emitted job JSON."""

from __future__ import annotations

import dagster as dg

from neuro_pipelines.keys import validate_key

RECORDINGS = "recordings"
recordings_partitions = dg.DynamicPartitionsDefinition(name=RECORDINGS)


def validate_recording_key(key: str) -> str:
    """A recording key is a safe slug (see :func:`neuro_pipelines.keys.validate_key`)."""
    return validate_key(key, RECORDINGS)


def recording_partition_key(session_key: str, recording_name: str) -> str:
    """Stable, safe key ``<slug(session)>__<slug(recording name)>`` for one job.

    The session is always part of the key (keys are unique across sessions, spec §16) even when the JSON's
    ``recording_name`` has no prefix. ``slugify`` maps spaces, ``#`` and other characters outside
    ``[A-Za-z0-9_.+=@-]`` to ``-``: ``oe_session`` + ``experiment1_Record Node 101#Neuropix-PXI-100.ProbeA-AP_recording1``
    → ``oe_session__experiment1_Record-Node-101-Neuropix-PXI-100.ProbeA-AP_recording1``. Keys longer than the
    limit are cut and end in 10 hex digits of the SHA-1 of the original pair. The original names stay in metadata.
    """
    import hashlib

    from neuro_pipelines.keys import MAX_KEY_LENGTH, slugify

    key = f"{slugify(session_key) or 'session'}__{slugify(recording_name) or 'recording'}"
    if len(key) > MAX_KEY_LENGTH:
        digest = hashlib.sha1(f"{session_key}\x00{recording_name}".encode()).hexdigest()[:10]
        key = f"{key[: MAX_KEY_LENGTH - 11].rstrip('-._+=@')}-{digest}"
    return validate_recording_key(key)
