"""Which jobs a dispatch yields, keyed by partition, and where their files go (pure).

The one computation the ``ephys_job`` asset, the new-session sensor and the ``ephys-dispatch`` CLI share:
resolving a session's parameters (config, per-session parameter file, detected format), discovering its jobs,
numbering them and naming their partitions and files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.jobs import DispatchResult, discover_jobs
from ephys_assets.dispatch.keys import dispatch_keys, session_key_part, session_prefix
from ephys_assets.dispatch.model import Job
from ephys_assets.dispatch.params import DispatchParams, params_from_mapping
from ephys_assets.dispatch.sessions import data_root_entries
from ephys_assets.dispatch.watch import detect_input_format, read_session_params, session_state
from neuro_core.files import confined_path

OUTPUT_LAYOUTS = ("per_session", "flat")
_CACHE: dict[tuple, DispatchResult] = {}
_CACHE_LIMIT = 16


def job_session_key(job: Job) -> str:
    """The data-root entry the job came from (folder or NWB file name); falls back to the session name."""
    if job.session_folder is not None:
        return Path(job.session_folder).name
    return job.session_name or "session"


@dataclass(frozen=True)
class PlannedDispatch:
    """Every job of one dispatch with its partition key; ``index`` is the ``job_<i>.json`` number."""

    result: DispatchResult
    keys: tuple[str, ...]

    def index_of(self, key: str) -> int:
        return self.keys.index(key)

    def session_indices(self, session: str) -> list[int]:
        """Indices of the jobs of one data-root entry."""
        return [i for i, job in enumerate(self.result.jobs) if job_session_key(job) == session]


def plan_dispatch(
    data_root: str | Path, params: DispatchParams, sessions: Sequence[str] | None = None
) -> PlannedDispatch:
    """Discover the jobs (cached on the content fingerprint of the entries involved) and key them."""
    data_root = Path(os.path.abspath(data_root))
    entries = sorted(sessions) if sessions else [p.name for p in data_root_entries(data_root)]
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
    keys = dispatch_keys([(job_session_key(job), job.base_recording_name) for job in result.jobs])
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise DispatchError(f"two jobs map to the same partition key(s) {duplicates}", data_root)
    return PlannedDispatch(result=result, keys=keys)


def resolve_params(
    data_root: Path, session: str, values: Mapping[str, Any], use_session_file: bool = True
) -> DispatchParams:
    """The parameters one session is dispatched with: ``values`` (config or flags), overridden by the session's
    ``ephys_dispatch.json`` when ``use_session_file``; an empty ``input`` is detected from the session's files."""
    merged = dict(values)
    path = data_root / session
    if use_session_file and path.is_dir():
        merged.update(read_session_params(path))
    if not merged.get("input"):
        detected = detect_input_format(path)
        if detected is None:
            raise DispatchError("cannot tell the input format of this session; set 'input'", path)
        merged["input"] = detected
    return params_from_mapping(merged)


def sessions_for_key(data_root: Path, partition_key: str, session_tag: str | None) -> list[str]:
    """Which data-root entry a partition key belongs to: the run's ``session`` tag, else the key's prefix."""
    if session_tag:
        return [session_tag]
    matches = [p.name for p in data_root_entries(data_root) if partition_key.startswith(session_prefix(p.name))]
    if matches:
        return [max(matches, key=lambda name: len(session_prefix(name)))]
    raise DispatchError(f"no session under the data root matches partition key {partition_key!r}", data_root)


def job_output_path(results_root: Path, job: Job, index: int, layout: str) -> Path:
    """``flat``: ``<results>/job_<i>.json`` (the capsule's layout); ``per_session``: under ``<results>/<session>/``."""
    if layout == "flat":
        return confined_path(results_root, f"job_{index}.json")
    if layout != "per_session":
        raise DispatchError(f"output_layout must be one of {list(OUTPUT_LAYOUTS)}, got {layout!r}", "output_layout")
    return confined_path(results_root, session_key_part(job_session_key(job)), f"job_{index}.json")


def job_metadata(job: Job) -> dict[str, Any]:
    """Plain values describing one job (for metadata and the session manifest)."""
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

    A key belongs to the session with the longest matching prefix (``a__`` vs ``a__b__``).
    """
    current = set(current_keys)
    prefixes = {session_prefix(s) for s in session_keys}
    others = {session_prefix(s) for s in other_session_keys} - prefixes
    stale = []
    for key in existing_keys:
        if key in current:
            continue
        owner = max((p for p in prefixes | others if key.startswith(p)), key=len, default=None)
        if owner in prefixes:
            stale.append(key)
    return sorted(stale)
