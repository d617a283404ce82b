"""Helpers for watching a data root: session fingerprints, quiet periods, format detection (pure)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.errors import DispatchError

SESSION_PARAMS_FILE = "ephys_dispatch.json"


@dataclass(frozen=True)
class SessionState:
    """Content fingerprint (names, sizes, mtimes) and newest modification time of a session folder."""

    name: str
    fingerprint: str
    newest_mtime: float
    n_files: int


def session_state(path: Path) -> SessionState:
    digest = hashlib.sha1()
    newest = 0.0
    n_files = 0
    entries: list[tuple[str, int, int]] = []
    if path.is_file():
        stat = path.stat()
        entries.append((path.name, stat.st_size, stat.st_mtime_ns))
    else:
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for filename in sorted(filenames):
                full = os.path.join(dirpath, filename)
                try:
                    stat = os.stat(full)
                except OSError:
                    continue
                entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    for rel, size, mtime_ns in entries:
        digest.update(f"{rel}\x00{size}\x00{mtime_ns}\n".encode())
        newest = max(newest, mtime_ns / 1e9)
        n_files += 1
    return SessionState(path.name, digest.hexdigest(), newest, n_files)


def detect_input_format(path: Path) -> str | None:
    """Guess the dispatch input of one entry of the data root; None when it is not a recognisable session."""
    if path.is_file() or path.name.endswith((".nwb", ".nwb.zarr")):
        return "nwb" if path.name.endswith((".nwb", ".nwb.zarr")) else None
    lowered = path.name.lower()
    if ("ecephys" in lowered or "behavior" in lowered) and (
        next(path.glob("**/ecephys_compressed"), None) is not None or (path / "ecephys").is_dir()
    ):
        return "aind"
    if next(path.rglob("*.meta"), None) is not None:
        return "spikeglx"
    if next(path.rglob("structure.oebin"), None) is not None:
        return "openephys"
    if next(path.rglob("*.nwb"), None) is not None:
        return "nwb"
    return None


def read_session_params(path: Path) -> dict[str, Any]:
    """The optional per-session parameter file ``<session>/ephys_dispatch.json`` (a JSON object)."""
    params_file = path / SESSION_PARAMS_FILE
    if not params_file.is_file():
        return {}
    try:
        parsed = json.loads(params_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DispatchError(f"per-session parameter file is not valid JSON: {exc}", params_file) from None
    if not isinstance(parsed, dict):
        raise DispatchError("per-session parameter file must hold a JSON object", params_file)
    return parsed
