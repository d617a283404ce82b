"""Glue between the Dagster layer and the pure dispatcher: which jobs a config yields, keyed by partition.

Kept free of Dagster imports so the sensor, the asset and the CLI agree on one computation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.jobs import DispatchResult, discover_jobs
from ephys_assets.dispatch.model import Job
from ephys_assets.dispatch.params import DispatchParams
from ephys_assets.dispatch.watch import read_session_params, session_state
from ephys_assets.partitions import recording_partition_key

_CACHE: dict[tuple, DispatchResult] = {}
_CACHE_LIMIT = 16


def job_session_key(job: Job) -> str:
    """The data-root entry the job came from (folder or NWB file name); falls back to the session name."""
    if job.session_folder is not None:
        return Path(job.session_folder).name
    return job.session_name or "session"


def job_partition_key(job: Job) -> str:
    return recording_partition_key(job_session_key(job), job.base_recording_name)


@dataclass(frozen=True)
class PlannedDispatch:
    """Every job of one dispatch with its partition key; ``index`` is the ``job_<i>.json`` number."""

    result: DispatchResult
    keys: tuple[str, ...]

    def index_of(self, key: str) -> int:
        return self.keys.index(key)


def plan_dispatch(
    data_root: str | Path, params: DispatchParams, sessions: Sequence[str] | None = None
) -> PlannedDispatch:
    """Discover jobs (cached on the content fingerprint of the data entries involved) and key them."""
    data_root = Path(os.path.abspath(data_root))
    entries = (
        sorted(sessions)
        if sessions
        else sorted(p.name for p in data_root.iterdir())
        if data_root.is_dir()
        else []
    )
    fingerprints = tuple(
        session_state(data_root / name).fingerprint for name in entries if (data_root / name).exists()
    )
    cache_key = (str(data_root), tuple(entries), repr(params.as_dict()), fingerprints, bool(sessions))
    result = _CACHE.get(cache_key)
    if result is None:
        result = discover_jobs(data_root, params, sessions=list(sessions) if sessions else None)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[cache_key] = result
    keys = tuple(job_partition_key(job) for job in result.jobs)
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        from ephys_assets.dispatch.errors import DispatchError

        raise DispatchError(f"two jobs map to the same partition key(s) {duplicates}", data_root)
    return PlannedDispatch(result=result, keys=keys)


def session_overrides(data_root: Path, sessions: Sequence[str]) -> dict[str, Any]:
    """Merged per-session parameter files (only meaningful when dispatching one session)."""
    merged: dict[str, Any] = {}
    for name in sessions:
        path = Path(data_root) / name
        if path.is_dir():
            merged.update(read_session_params(path))
    return merged


def job_metadata(job: Job) -> dict[str, Any]:
    """Plain values describing one job (for MaterializeResult metadata and the session manifest)."""
    return {
        "session": job.session_name,
        "recording_name": job.recording_name,
        "channels": job.num_channels,
        "sampling_rate_hz": job.sampling_frequency,
        "duration_s": job.duration,
        "segments": job.num_segments,
        "samples_per_segment": list(job.num_samples),
        "skip_times": job.skip_times,
        "timestamp_check": job.timestamp_message or "passed",
        "timestamp_source": job.timestamp_source,
        "lfp_paired": job.recording_lfp_dict is not None,
        "probe_dict": job.probe_dict is not None,
    }


def stale_partition_keys(
    existing_keys: Sequence[str],
    session_keys: Sequence[str],
    current_keys: Sequence[str],
    other_session_keys: Sequence[str] = (),
) -> list[str]:
    """Keys of ``session_keys``' sessions that exist in the instance but are no longer produced.

    A key belongs to a session when it starts with ``<slug(session)>__``; keys that also match a longer prefix of
    another data-root entry (``a`` vs ``a__b``) are left to that entry.
    """
    from neuro_pipelines.keys import slugify

    current = set(current_keys)
    prefixes = {f"{slugify(s) or 'session'}__" for s in session_keys}
    others = {f"{slugify(s) or 'session'}__" for s in other_session_keys} - prefixes
    stale = []
    for key in existing_keys:
        if key in current:
            continue
        owner = max((p for p in prefixes | others if key.startswith(p)), key=len, default=None)
        if owner in prefixes:
            stale.append(key)
    return sorted(stale)
