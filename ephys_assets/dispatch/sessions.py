"""Session discovery shared by the folder-based formats: sorted (D12), format-aware (D22)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ephys_assets.dispatch.errors import DispatchError

FORMAT_LABELS = {"spikeglx": "SpikeGLX", "openephys": "Open Ephys", "aind": "ecephys"}
FORMAT_MARKERS = {"spikeglx": "*.meta", "openephys": "structure.oebin"}


def _has_marker(folder: Path, pattern: str) -> bool:
    return next(folder.rglob(pattern), None) is not None


def list_session_folders(data_root: Path, input_format: str, only: Sequence[str] | None = None) -> list[Path]:
    """Directories under ``data_root`` that hold the format's files, sorted by name.

    ``only`` restricts discovery to the named folders (the sensor dispatches one session at a time).
    """
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise DispatchError("data folder does not exist or is not a directory", data_root)
    if input_format == "aind":
        candidates = [
            p
            for p in data_root.iterdir()
            if p.is_dir() and ("ecephys" in p.name.lower() or "behavior" in p.name.lower())
        ]
    else:
        marker = FORMAT_MARKERS[input_format]
        candidates = [
            p
            for p in data_root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and _has_marker(p, marker)
        ]
    if only is not None:
        wanted = set(only)
        candidates = [p for p in candidates if p.name in wanted]
    return sorted(candidates, key=lambda p: p.name)


def require_sessions(
    folders: list[Path], input_format: str, multi_session: bool, data_root: Path
) -> list[Path]:
    """The original's messages for zero or several sessions (spec §12)."""
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
