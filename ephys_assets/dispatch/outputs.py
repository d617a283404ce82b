"""Job files of one results folder: which ``job_<i>.json`` belong to the current dispatch, which are stale.

A re-dispatch into the same folder that yields fewer jobs would otherwise leave ``job_<n>.json`` files of the earlier
dispatch behind, and the downstream capsules pick up every ``*job*.json`` they find. Stale files are removed only
once every file of the current dispatch holds its current content, so a crash half-way never loses a valid file.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

JOB_FILE_RE = re.compile(r"^job_(\d+)\.json$")


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


@contextlib.contextmanager
def folder_lock(folder: Path, name: str = ".dispatch.lock") -> Iterator[None]:
    """Exclusive ``flock`` on ``<folder>/<name>`` (blocking): concurrent runs of one session take turns to check
    completeness, prune and write the manifest, so the last one to finish always sees every file."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
