"""Job files and manifests of one results folder (pure).

A results folder (``flat``: the folder itself; ``per_session``: ``<results>/<session>/``) holds ``job_<i>.json``
files and a ``manifest.json`` that says which dispatch they belong to: the sessions and their content
fingerprints, the parameters, the jobs, and whether the dispatch is ``complete``. A dispatch writes the manifest
with ``complete: false`` before its first job file and ``complete: true`` after its last, so a killed dispatch is
recognisable as such and the next complete one replaces it. The manifests are also the record of what has been
dispatched that the new-session sensor and ``ephys-dispatch`` share (:func:`dispatched_in`).

Writers of one folder take turns under its lock (``.dispatch.lock``). A re-dispatch that yields fewer jobs
would otherwise leave ``job_<n>.json`` files of the earlier dispatch behind (downstream capsules pick up every
``*job*.json``); stale files are removed only once every file of the current dispatch holds its current content.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.keys import session_key_part
from neuro_core.files import write_json_atomic
from neuro_core.locks import exclusive_lock

JOB_FILE_RE = re.compile(r"^job_(\d+)\.json$")
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".dispatch.lock"


def job_file_name(index: int) -> str:
    return f"job_{index}.json"


def job_files_in(folder: Path) -> list[Path]:
    """Regular files (or symlinks) directly in ``folder`` named ``job_<i>.json``, by index; never directories."""
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if JOB_FILE_RE.match(p.name) and (p.is_symlink() or p.is_file()) and not p.is_dir()
    ]
    return sorted(found, key=lambda p: int(JOB_FILE_RE.match(p.name)[1]))


def stale_job_files(folder: Path, current_names: Iterable[str]) -> list[Path]:
    """``job_<i>.json`` files in ``folder`` that are not part of the current dispatch."""
    keep = set(current_names)
    return [p for p in job_files_in(folder) if p.name not in keep]


def pending_job_files(folder: Path, expected_texts: Mapping[str, str]) -> list[str]:
    """Names of current job files that are missing or do not (yet) hold the current dispatch's content."""
    pending = []
    for name, text in expected_texts.items():
        path = folder / name
        try:
            if path.read_text(encoding="utf-8") == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        pending.append(name)
    return pending


def remove_stale_job_files(folder: Path, current_names: Iterable[str]) -> list[Path]:
    """Delete the stale ``job_<i>.json`` files of ``folder`` (nothing else, nothing below it); returns them."""
    removed = []
    for path in stale_job_files(folder, current_names):
        with contextlib.suppress(FileNotFoundError):  # a concurrent run may have removed it already
            path.unlink()
            removed.append(path)
    return removed


def prune_if_complete(folder: Path, expected_texts: Mapping[str, str]) -> tuple[list[str], list[Path]]:
    """Remove stale job files only when every current job file is written with its current content.

    Returns (pending names, removed paths); nothing is removed while any current file is pending.
    """
    pending = pending_job_files(folder, expected_texts)
    if pending:
        return pending, []
    return [], remove_stale_job_files(folder, expected_texts)


def folder_lock(folder: Path, what: str, *, wait: bool) -> contextlib.AbstractContextManager[None]:
    """The results folder's lock. Runs of one session wait for each other (the last one to finish sees every
    file); a whole dispatch into a folder another dispatch holds fails at once (``LockBusyError``)."""
    return exclusive_lock(folder / LOCK_FILE, what, wait=wait)


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> Path:
    return write_json_atomic(folder / MANIFEST_FILE, dict(manifest))


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def dispatched_in(results_root: Path, session: str, fingerprint: str) -> Path | None:
    """The manifest of a complete dispatch of ``session`` with exactly this content under ``results_root``
    (the flat manifest, or the session's own folder), else None."""
    for folder in (results_root, results_root / session_key_part(session)):
        manifest = read_manifest(folder)
        if manifest and manifest.get("complete") and manifest.get("sessions", {}).get(session) == fingerprint:
            return folder / MANIFEST_FILE
    return None


def update_session_folder(
    folder: Path,
    session: str,
    fingerprint: str,
    jobs: Mapping[int, tuple[str, Any]],
    params: Mapping[str, Any],
    log: Mapping[str, Any],
    stale_partition_keys: list[str],
) -> dict[str, Any]:
    """After one job file of a per-session dispatch was written: under the folder's lock, prune stale job files
    once every job of the dispatch holds its current content, and write the manifest (``complete`` then).

    ``jobs`` maps each job index of the session to (partition key, job). Returns the manifest written.
    """
    from ephys_assets.dispatch.jobs import job_json_text

    expected = {job_file_name(i): job_json_text(job) for i, (_key, job) in jobs.items()}
    with folder_lock(folder, f"the dispatch of session {session}", wait=True):
        pending, removed = prune_if_complete(folder, expected)
        manifest = {
            "layout": "per_session",
            "complete": not pending,
            "sessions": {session: fingerprint},
            "params": dict(params),
            "jobs": [
                {"partition_key": key, "recording_name": job.recording_name, "file": job_file_name(i)}
                for i, (key, job) in jobs.items()
            ],
            "pending_files": pending,
            "stale_files_removed": [p.name for p in removed],
            "stale_files_left": [p.name for p in stale_job_files(folder, expected)],
            "stale_partition_keys": stale_partition_keys,
            **log,
        }
        write_manifest(folder, manifest)
    return manifest
