"""Session discovery shared by the folder-based formats: sorted (D12), format-aware (D22)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ephys_assets.dispatch.errors import DispatchError

FORMAT_LABELS = {"spikeglx": "SpikeGLX", "openephys": "Open Ephys", "aind": "ecephys"}
FORMAT_MARKERS = {"spikeglx": "*.meta", "openephys": "structure.oebin"}


def _has_marker(folder: Path, pattern: str) -> bool:
    return next(folder.rglob(pattern), None) is not None


def data_root_entries(data_root: Path) -> list[Path]:
    """The entries of ``data_root`` that may be sessions, sorted by name.

    Hidden entries are not sessions, nor are symlinks that point back into the data root (``self_link -> .``
    would otherwise make every session count twice); symlinks to data elsewhere (a mounted store) are.
    """
    root = Path(data_root)
    if not root.is_dir():
        return []
    real_root = os.path.realpath(root)
    entries = []
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            target = os.path.realpath(entry)
            if os.path.commonpath([real_root, target]) == real_root or real_root.startswith(target + os.sep):
                continue
        entries.append(entry)
    return sorted(entries, key=lambda p: p.name)


def list_session_folders(data_root: Path, input_format: str, only: Sequence[str] | None = None) -> list[Path]:
    """Directories under ``data_root`` that hold the format's files, sorted by name.

    ``only`` restricts discovery to the named folders (the sensor dispatches one session at a time).
    """
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise DispatchError("data folder does not exist or is not a directory", data_root)
    entries = [p for p in data_root_entries(data_root) if p.is_dir()]
    if input_format == "aind":
        candidates = [p for p in entries if "ecephys" in p.name.lower() or "behavior" in p.name.lower()]
    else:
        candidates = [p for p in entries if _has_marker(p, FORMAT_MARKERS[input_format])]
    if only is not None:
        wanted = set(only)
        candidates = [p for p in candidates if p.name in wanted]
    return candidates


def require_sessions(
    folders: list[Path], input_format: str, multi_session: bool, data_root: Path
) -> list[Path]:
    """The original's messages for zero or several sessions."""
    label = FORMAT_LABELS[input_format]
    if not folders:
        if input_format == "aind":
            raise DispatchError("No valid ecephys sessions found.", data_root)
        raise DispatchError(f"No valid {label} folder found.", data_root)
    if len(folders) > 1 and not multi_session:
        raise DispatchError(
            f"Multiple {label} sessions found in the data folder. Please only add one at a time "
            f"({', '.join(p.name for p in folders)}); pass --multi-session to dispatch them together",
            data_root,
        )
    return folders


def compat_input_folder(session_folder: Path) -> str:
    """The original's ``input_folder`` form: ``../data/<session>`` (relative to the capsule's code/)."""
    return f"../data/{session_folder.name}"
