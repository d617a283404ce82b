"""Validation of dynamic-partition keys.

Keys become folder and file names, so they must never carry a path separator or ``..``. Dagster also reserves
``[ ] , |`` (multi-partitions) and ``...`` (CLI ranges); none of those are allowed characters here.
"""

from __future__ import annotations

import hashlib
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
    Different inputs can collide (``ünï`` and ``änï``): use :func:`unique_slug` where that matters.
    """
    slug = re.sub(r"[^A-Za-z0-9_.+=@-]+", "-", text)
    slug = re.sub(r"\.{2,}", ".", slug)
    return slug.strip("-._+=@")


def short_hash(text: str, n_hex: int = 8) -> str:
    """The first ``n_hex`` hex digits of the SHA-1 of ``text`` (UTF-8)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n_hex]


def unique_slug(text: str, fallback: str) -> str:
    """A readable slug that two different texts never share.

    Texts that are already safe stay as they are; any text the slug changes (Unicode, spaces, ``#``…) gets
    ``-<8 hex of its SHA-1>`` appended, so ``ünïcödé_g0`` and ``änïcödá_g0`` get different slugs while
    ``oe_session`` stays ``oe_session``. ``fallback`` names a text with no safe character at all.
    """
    slug = slugify(text)
    if slug == text:
        return slug
    return f"{slug or fallback}-{short_hash(text)}"
