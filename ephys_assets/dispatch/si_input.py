"""``spikeinterface`` input: auto-load of SpikeInterface-native folders, or a named reader (D8/D9)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.model import DispatchLog, RecordingEntry
from ephys_assets.dispatch.params import DispatchParams
from ephys_assets.dispatch.sessions import data_root_entries


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def auto_load_candidates(data_root: Path) -> list[Path]:
    """Directories (plus the sub-directories of a single one), else .json/.pkl files; sorted (D12)."""
    dirs = [p for p in data_root_entries(data_root) if p.is_dir()]
    if len(dirs) == 1:
        dirs += sorted((p for p in dirs[0].iterdir() if p.is_dir()), key=lambda p: p.name)
    if dirs:
        return dirs
    return sorted((p for p in data_root.iterdir() if p.suffix in (".json", ".pkl")), key=lambda p: p.name)


def load_auto(data_root: Path, log: DispatchLog) -> list[RecordingEntry]:
    import spikeinterface as si

    entries = []
    for candidate in auto_load_candidates(data_root):
        try:
            recording = si.load(candidate)
        except Exception as exc:
            log.swallow(f"si.load({candidate.name})", exc)
            continue
        if not hasattr(recording, "get_num_segments") or not hasattr(recording, "get_channel_ids"):
            log.notes.append(f"{candidate.name} is not a recording; ignored")
            continue
        entries.append(
            RecordingEntry(
                session_name="session1",
                session_folder=candidate,
                base_name=f"block{len(entries)}_stream0_recording",
                raw=recording,
                stream_name="stream0",
            )
        )
    return entries


def neo_reader_names() -> set[str]:
    """Reader-type strings backed by neo (D8: decided from the name, not by comparing functions to strings)."""
    from spikeinterface.extractors.neoextractors import neo_recording_extractors_dict

    return {
        cls.__name__.replace("Recording", "").replace("Extractor", "").lower()
        for cls in neo_recording_extractors_dict
    }


def _resolve_kwargs(kwargs: dict[str, Any], data_root: Path) -> dict[str, Any]:
    out = copy.deepcopy(kwargs)  # D9: never mutate the caller's kwargs
    for key, value in out.items():
        if "path" in key and isinstance(value, str) and not Path(value).is_absolute():
            out[key] = str(data_root / value)  # relative reader paths are relative to the data folder
    return out


def load_reader(
    data_root: Path, info: dict[str, Any], params: DispatchParams, log: DispatchLog
) -> list[RecordingEntry]:
    import probeinterface as pi
    from spikeinterface.extractors import recording_extractor_full_dict

    reader_type = info["reader_type"]
    if reader_type not in recording_extractor_full_dict:
        raise DispatchError(
            f"Reader type {reader_type} not supported. Available readers: {sorted(recording_extractor_full_dict)}",
            "spikeinterface_info.reader_type",
        )
    reader = recording_extractor_full_dict[reader_type]
    kwargs_list = _as_list(info.get("reader_kwargs"))
    if not kwargs_list or not all(isinstance(k, dict) for k in kwargs_list):
        raise DispatchError(
            "reader_kwargs should be a dict or a list of dicts, with the path argument of the reader "
            "(e.g. folder_path or file_path)",
            "spikeinterface_info.reader_kwargs",
        )
    if len(kwargs_list) > 1 and not params.multi_session:
        raise DispatchError(
            "To use multiple sessions, you need to set the multi_session flag to True", "multi_session"
        )
    keep = _as_list(info.get("keep_stream_substrings"))
    skip = _as_list(info.get("skip_stream_substrings"))
    if keep and skip:
        raise DispatchError(
            "You cannot use both keep_stream_substrings and skip_stream_substrings", "spikeinterface_info"
        )
    session_names = _as_list(info.get("session_names")) or [f"session{i}" for i in range(len(kwargs_list))]
    probe_paths = info.get("probe_paths")
    probe_list = _as_list(probe_paths) if isinstance(probe_paths, list) else [probe_paths] * len(kwargs_list)
    if len(session_names) != len(kwargs_list) or len(probe_list) != len(kwargs_list):
        raise DispatchError(
            "session_names and probe_paths must have one entry per reader_kwargs entry", "spikeinterface_info"
        )
    is_neo = reader_type in neo_reader_names()
    entries = []
    for kwargs, session_name, probe_entry in zip(kwargs_list, session_names, probe_list, strict=True):
        base_kwargs = _resolve_kwargs(kwargs, data_root)
        if is_neo:
            reader_class = next(
                cls
                for cls in __import__(
                    "spikeinterface.extractors.neoextractors", fromlist=["neo_recording_extractors_dict"]
                ).neo_recording_extractors_dict
                if cls.__name__.replace("Recording", "").replace("Extractor", "").lower() == reader_type
            )
            path_kwargs = {k: v for k, v in base_kwargs.items() if "path" in k}
            try:
                streams, _ids = reader_class.get_streams(**path_kwargs)
                n_blocks = reader_class.get_num_blocks(**path_kwargs)
            except Exception as exc:
                raise DispatchError(
                    f"cannot list streams ({type(exc).__name__}: {exc})", str(path_kwargs)
                ) from exc
            if "stream_name" in base_kwargs:
                streams = [base_kwargs["stream_name"]]
        else:
            streams, n_blocks = [None], 1
        for block_index in range(n_blocks):
            for stream in streams:
                if stream is not None and keep and not any(s in stream for s in keep):
                    log.drop(f"{session_name}/{stream}", "not in keep_stream_substrings")
                    continue
                if stream is not None and skip and any(s in stream for s in skip):
                    log.drop(f"{session_name}/{stream}", "in skip_stream_substrings")
                    continue
                stream_kwargs = dict(base_kwargs)
                if is_neo:
                    stream_kwargs["stream_name"] = stream
                    if n_blocks > 1:  # not every neo reader takes block_index
                        stream_kwargs["block_index"] = block_index
                try:
                    recording = reader(**stream_kwargs)
                except Exception as exc:
                    raise DispatchError(
                        f"cannot read stream {stream} ({type(exc).__name__}: {exc})", str(kwargs)
                    ) from exc
                probe_file = probe_entry.get(stream) if isinstance(probe_entry, dict) else probe_entry
                if probe_file:
                    # in place in SpikeInterface 0.105 (it returns None; the original assigned its result)
                    recording.set_probegroup(
                        pi.read_probeinterface(_resolve_kwargs({"path": probe_file}, data_root)["path"])
                    )
                if not recording.has_probe():
                    raise DispatchError(
                        f"Probe not specified for {stream}. Use the 'probe_paths' field of spikeinterface-info to specify it.",
                        "spikeinterface_info.probe_paths",
                    )
                stream_label = stream if stream is not None else "stream0"
                entries.append(
                    RecordingEntry(
                        session_name=str(session_name),
                        session_folder=None,
                        base_name=f"block{block_index}_{stream_label}_recording",
                        raw=recording,
                        stream_name=stream_label,
                    )
                )
    return entries


def load_spikeinterface_entries(
    data_root: Path, params: DispatchParams, log: DispatchLog, sessions: Sequence[str] | None = None
) -> list[RecordingEntry]:
    info = params.spikeinterface_info or {}
    if "reader_type" not in info:
        raise DispatchError("spikeinterface_info needs a 'reader_type'", "spikeinterface_info")
    if info["reader_type"] == "spikeinterface":
        return load_auto(data_root, log)
    return load_reader(data_root, info, params, log)
