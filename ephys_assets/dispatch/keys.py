"""Partition keys of dispatched jobs (pure): readable, safe, and never shared by two different names.

``<session part>__<recording part>``. The session part is the session folder (or NWB file) name when it is
already a safe key, else its slug plus 8 hex digits of the SHA-1 of the original name (``ünïcödé_g0`` and
``änïcödá_g0`` slug alike but get different keys). The recording part is the slug of the ``recording_name``
without the session prefix (Open Ephys stream names carry spaces and ``#``); two recordings of one dispatch whose
slugs collide get the same kind of hash suffix. Keys longer than the limit are cut and end in a hash of the whole
original pair. The original names are always kept in the metadata.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from neuro_core.keys import MAX_KEY_LENGTH, short_hash, slugify, unique_slug, validate_key

SEPARATOR = "__"


def session_key_part(session: str) -> str:
    """The key prefix of one data-root entry (folder or NWB file name)."""
    return unique_slug(session, "session")


def session_prefix(session: str) -> str:
    return session_key_part(session) + SEPARATOR


def recording_partition_key(session: str, recording_name: str, disambiguate: bool = False) -> str:
    """The key of one job; ``disambiguate`` adds the recording name's hash (used when two slugs collide)."""
    recording = slugify(recording_name) or "recording"
    if disambiguate:
        recording = f"{recording}-{short_hash(recording_name)}"
    key = f"{session_key_part(session)}{SEPARATOR}{recording}"
    if len(key) > MAX_KEY_LENGTH:
        digest = short_hash(f"{session}\x00{recording_name}", 10)
        key = f"{key[: MAX_KEY_LENGTH - 11].rstrip('-._+=@')}-{digest}"
    return validate_key(key, "recordings")


def dispatch_keys(pairs: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """Keys for the (session, recording name) pairs of one dispatch, unique within it."""
    plain = [recording_partition_key(s, r) for s, r in pairs]
    counts = Counter(plain)
    return tuple(
        recording_partition_key(s, r, disambiguate=True) if counts[key] > 1 else key
        for (s, r), key in zip(pairs, plain, strict=True)
    )
