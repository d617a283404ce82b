"""``aind`` loader: AIND assets with Zarr-compressed traces plus a clipped Open Ephys tree, or uncompressed."""

from __future__ import annotations

import json
from pathlib import Path

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.model import DispatchLog, RecordingEntry
from ephys_assets.dispatch.openephys import (
    experiment_ids,
    kept_streams,
    load_openephys_tree,
    node_folder_for,
    open_ephys_entry,
    split_stream_name,
)


def aind_layout(session: Path) -> tuple[Path, Path | None]:
    """(Open Ephys root, compressed folder or None) for the new, old and uncompressed layouts."""
    for base in (session / "ecephys", session):
        if (base / "ecephys_compressed").is_dir():
            clipped = base / "ecephys_clipped"
            if not clipped.is_dir():
                raise DispatchError("AIND session has ecephys_compressed but no ecephys_clipped", clipped)
            return clipped, base / "ecephys_compressed"
    if (session / "ecephys").is_dir():
        return session / "ecephys", None
    raise DispatchError(
        "not an AIND ecephys session: no ecephys/, ecephys_compressed/ or ecephys_clipped/", session
    )


def aind_session_name(session: Path) -> str:
    """``data_description.json`` name; the folder name when missing (D21: no null names, no collisions)."""
    description = session / "data_description.json"
    if description.is_file():
        try:
            name = json.loads(description.read_text()).get("name")
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise DispatchError(
                f"data_description.json is not a valid JSON object: {exc}", description
            ) from None
        if name:
            return str(name)
    return session.name


def _json_field(path: Path, field: str) -> str:
    try:
        value = json.loads(path.read_text()).get(field)
    except (OSError, json.JSONDecodeError, AttributeError):
        return "undefined"
    return "undefined" if value is None else str(value)


def aind_logging_identity(data_root: Path) -> tuple[str, str]:
    """(subject_id, asset_name) for ``aind_log_utils``: ``subject.json`` and ``data_description.json`` of the
    first AIND session folder (sorted), ``"undefined"`` where missing, as the capsule does."""
    from ephys_assets.dispatch.sessions import list_session_folders

    folders = list_session_folders(data_root, "aind")
    if not folders:
        return "undefined", "undefined"
    first = folders[0]
    return _json_field(first / "subject.json", "subject_id"), _json_field(first / "data_description.json", "name")


def _read_zarr(path: Path):
    import spikeinterface as si

    try:
        return si.read_zarr(path)
    except Exception as exc:
        raise DispatchError(f"unreadable Zarr recording ({type(exc).__name__}: {exc})", path) from exc


def load_aind_session(
    session: Path, log: DispatchLog, record_nodes: str | tuple[str, ...]
) -> list[RecordingEntry]:
    root, compressed = aind_layout(session)
    session_name = aind_session_name(session)
    if compressed is None:
        # D26: one timestamp source per mode; uncompressed aind reads AP and LFP without sync timestamps.
        return load_openephys_tree(
            root,
            session_name,
            session,
            log,
            input_format="aind",
            load_sync_timestamps=False,
            record_nodes=record_nodes,
        )
    kept, _all_streams, n_blocks = kept_streams(
        root, session, log, input_format="aind", record_nodes=record_nodes, tree="of the clipped tree"
    )
    entries = []
    for stream in kept:
        exp_ids = experiment_ids(node_folder_for(root, stream))
        _node, oe_stream = split_stream_name(stream)
        for block_index in range(n_blocks):
            experiment = f"experiment{exp_ids[block_index]}"
            zarr_path = compressed / f"{experiment}_{stream}.zarr"
            if not zarr_path.exists():
                log.drop(f"{session.name}/{zarr_path.name}", "compressed Zarr missing")
                continue
            raw = _read_zarr(zarr_path)
            lfp = None
            if oe_stream.endswith("-AP"):
                lfp_path = compressed / f"{experiment}_{stream[: -len('-AP')]}-LFP.zarr"
                if lfp_path.exists():
                    try:
                        lfp = _read_zarr(lfp_path)
                    except DispatchError as exc:
                        log.swallow(f"No LFP stream found for {stream}", exc)
                else:
                    log.notes.append(f"No LFP stream found for {stream}")
            entries.append(
                open_ephys_entry(
                    session_name,
                    session,
                    root,
                    experiment,
                    stream,
                    block_index,
                    raw,
                    lfp,
                    "compressed Zarr",
                    log,
                )
            )
    return entries
