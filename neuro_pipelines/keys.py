"""Validation of dynamic-partition keys.

Keys become folder and file names, so they must never carry a path separator or ``..``. Dagster also reserves
``[ ] , |`` (multi-partitions) and ``...`` (CLI ranges); none of those are allowed characters here.
"""

from __future__ import annotations

import re

MAX_KEY_LENGTH = 200
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=@-]*$")


class InvalidPartitionKeyError(ValueError):
    """A partition key that is unsafe or malformed."""


def validate_key(key: str, partitions_name: str = "partition") -> str:
    """Return ``key`` unchanged if it is safe, else raise :class:`InvalidPartitionKeyError` saying why."""
    if not isinstance(key, str) or not key:
        raise InvalidPartitionKeyError(f"{partitions_name} key must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidPartitionKeyError(
            f"{partitions_name} key {key[:40]!r}… is {len(key)} characters long; at most {MAX_KEY_LENGTH} allowed"
        )
    if "/" in key or "\\" in key:
        raise InvalidPartitionKeyError(f"{partitions_name} key {key!r} contains a path separator")
    if ".." in key:
        raise InvalidPartitionKeyError(f"{partitions_name} key {key!r} contains '..'")
    if not _KEY_RE.match(key):
        raise InvalidPartitionKeyError(
            f"{partitions_name} key {key!r} has characters outside [A-Za-z0-9_.+=@-] "
            "or does not start with a letter or digit"
        )
    return key


def slugify(text: str) -> str:
    """Map free text (e.g. an Open Ephys stream name with spaces and '#') to the allowed key alphabet.

    Runs of disallowed characters become one ``-``; ``..`` collapses to ``.``; leading/trailing separators go.
    Different inputs can collide, so callers keep the original name in metadata.
    """
    slug = re.sub(r"[^A-Za-z0-9_.+=@-]+", "-", text)
    slug = re.sub(r"\.{2,}", ".", slug)
    return slug.strip("-._+=@")
