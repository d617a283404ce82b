"""Open Ephys binary loader (``openephys`` input and the clipped/uncompressed trees of ``aind``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.model import DispatchLog, RecordingEntry
from ephys_assets.dispatch.sessions import compat_input_folder

_EXPERIMENT_RE = re.compile(r"^experiment(\d+)$")
_NODE_NUMBER_RE = re.compile(r"(\d+)\s*$")


def split_stream_name(stream: str) -> tuple[str, str]:
    """``Record Node 101#Neuropix-PXI-100.ProbeA-AP`` → (record node, Open Ephys stream); no ``#`` → ("", name)."""
    if "#" in stream:
        node, oe_stream = stream.split("#", 1)
        return node, oe_stream
    return "", stream


def stream_drop_reason(stream: str, input_format: str) -> str | None:
    """Why an Open Ephys stream is not dispatched (suffix tests, D10/D11), or None to keep it."""
    _node, oe_stream = split_stream_name(stream)
    channel_part = oe_stream.rsplit(".", 1)[-1]
    if "NI-DAQ" in oe_stream:
        return "NI-DAQ stream"
    if oe_stream.endswith("SYNC"):
        return "sync channel stream"
    if channel_part.endswith("ADC") or "-ADC" in channel_part:
        return "ADC stream"
    if oe_stream.endswith("-LFP"):
        return "LFP band (paired with its AP stream)"
    if input_format == "aind" and "Rhythm" in oe_stream:
        return "acquisition-board (Rhythm) stream, dropped in aind mode"
    return None


def experiment_ids(node_folder: Path) -> list[int]:
    """Experiment numbers of one record node, sorted (gaps possible: experiment1, experiment3…)."""
    ids = [int(m[1]) for p in node_folder.iterdir() if p.is_dir() and (m := _EXPERIMENT_RE.match(p.name))]
    return sorted(ids)


def node_folder_for(root: Path, stream: str) -> Path:
    node, _ = split_stream_name(stream)
    return root / node if node else root  # D25: no node prefix → the root is the record-node folder itself


def check_openephys_tree(root: Path) -> None:
    """Corrupt ``structure.oebin`` or truncated ``continuous.dat`` → one clear error naming the file."""
    for oebin in sorted(root.rglob("structure.oebin")):
        try:
            structure = json.loads(oebin.read_text())
            streams = structure["continuous"]
            layout = [(s["folder_name"], int(s["num_channels"])) for s in streams]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DispatchError(
                f"corrupt structure.oebin ({type(exc).__name__}: {exc}); expected JSON with continuous[]"
                " folder_name/num_channels",
                oebin,
            ) from None
        for folder_name, n_channels in layout:
            stream_folder = oebin.parent / "continuous" / folder_name.rstrip("/")
            dat = stream_folder / "continuous.dat"
            if not dat.is_file():
                raise DispatchError("structure.oebin lists a stream whose continuous.dat is missing", dat)
            size = dat.stat().st_size
            if size % (2 * n_channels):
                raise DispatchError(
                    f"truncated continuous.dat: {size} bytes is not a multiple of {n_channels} channels x 2 bytes",
                    dat,
                )
            numbers = stream_folder / "sample_numbers.npy"
            if numbers.is_file():
                import numpy as np

                n_numbers = len(np.load(numbers, mmap_mode="r"))
                if n_numbers * 2 * n_channels != size:
                    raise DispatchError(
                        f"truncated continuous.dat: {size // (2 * n_channels)} frames but {n_numbers} sample numbers",
                        dat,
                    )


def select_record_nodes(
    streams: list[str], record_nodes: str | tuple[str, ...]
) -> tuple[list[str], dict[str, str]]:
    """Keep one record node per Open Ephys stream (lowest number, D23), all, or the named ones."""
    if record_nodes == "all":
        return list(streams), {}
    dropped: dict[str, str] = {}
    if isinstance(record_nodes, tuple):
        kept = [s for s in streams if split_stream_name(s)[0] in record_nodes or not split_stream_name(s)[0]]
        dropped = {s: f"record node not in {list(record_nodes)}" for s in streams if s not in kept}
        return kept, dropped
    best: dict[str, tuple[int, str]] = {}
    for stream in streams:
        node, oe_stream = split_stream_name(stream)
        match = _NODE_NUMBER_RE.search(node)
        number = int(match[1]) if match else 0
        if oe_stream not in best or (number, node) < best[oe_stream]:
            best[oe_stream] = (number, node)
    kept = [s for s in streams if best[split_stream_name(s)[1]][1] == split_stream_name(s)[0]]
    dropped = {s: "duplicate of the lowest-numbered record node" for s in streams if s not in kept}
    return kept, dropped


def single_probe_name(recording) -> str | None:
    """Name of the recording's only probe, or None when it has no probe or several.

    SpikeInterface < 0.105 (the original's) kept it in the ``probes_info`` annotation; 0.105 keeps the probe
    annotations in the probe group.
    """
    probes_info = recording.get_annotation("probes_info")
    if probes_info:
        return probes_info[0].get("name") if len(probes_info) == 1 else None
    if not recording.has_probe():
        return None
    probes = recording.get_probegroup().probes
    return probes[0].name if len(probes) == 1 else None


def probe_name_from_stream(oe_stream: str) -> str:
    """``Neuropix-PXI-100.ProbeA-AP`` → ``ProbeA`` (the name the GUI gives a probe without a custom name)."""
    device_part = oe_stream.rsplit(".", 1)[-1]
    for suffix in ("-AP", "-LFP"):
        if device_part.endswith(suffix):
            return device_part[: -len(suffix)]
    return device_part


def fix_empty_probe_name(recording, lfp, root: Path, stream: str, block_index: int, log: DispatchLog) -> bool:
    """The original's probe fix (D27: also in openephys): one probe with an empty name → re-read it from settings.

    If the settings file itself gives the probe no name (``custom_probe_name=""``), the probe is named after the
    stream's device part (``ProbeA``), so downstream steps never see an empty probe name.
    """
    if single_probe_name(recording) != "":
        return False
    import probeinterface as pi

    node_folder = node_folder_for(root, stream)
    _node, oe_stream = split_stream_name(stream)
    settings = node_folder / ("settings.xml" if block_index == 0 else f"settings_{block_index + 1}.xml")
    try:
        probe = pi.read_openephys(settings, stream_name=oe_stream)
        if not probe.name:
            probe.name = probe_name_from_stream(oe_stream)
        group_mode = "by_shank" if probe.shank_ids is not None else "by_probe"
        recording.set_probe(probe, group_mode=group_mode)
        if lfp is not None:
            lfp.set_probe(probe, group_mode=group_mode)
    except Exception as exc:
        log.swallow(f"probe fix for {stream} from {settings}", exc)
        return False
    log.notes.append(
        f"probe of {stream} (block {block_index}) had an empty name; re-read from {settings.name}"
    )
    return True


def kept_streams(
    root: Path,
    session_folder: Path,
    log: DispatchLog,
    *,
    input_format: str,
    record_nodes: str | tuple[str, ...],
    tree: str = "",
) -> tuple[list[str], list[str], int]:
    """(streams kept by the format's drop rules and the record-node choice, all streams, number of blocks) of an
    Open Ephys root; every dropped stream is logged. ``tree`` names the tree in the error (e.g. "of the clipped tree")."""
    from spikeinterface.extractors.neoextractors import OpenEphysBinaryRecordingExtractor

    try:
        stream_names, _ids = OpenEphysBinaryRecordingExtractor.get_streams(root)
        n_blocks = OpenEphysBinaryRecordingExtractor.get_num_blocks(root)
    except Exception as exc:
        label = f"cannot list Open Ephys streams{' ' + tree if tree else ''}"
        raise DispatchError(f"{label} ({type(exc).__name__}: {exc})", root) from exc
    candidates = []
    for stream in stream_names:
        reason = stream_drop_reason(stream, input_format)
        if reason is None:
            candidates.append(stream)
        else:
            log.drop(f"{session_folder.name}/{stream}", reason)
    kept, dropped = select_record_nodes(candidates, record_nodes)
    for stream, reason in dropped.items():
        log.drop(f"{session_folder.name}/{stream}", reason)
    return kept, list(stream_names), n_blocks


def load_openephys_tree(
    root: Path,
    session_name: str | None,
    session_folder: Path,
    log: DispatchLog,
    *,
    input_format: str,
    load_sync_timestamps: bool,
    record_nodes: str | tuple[str, ...],
) -> list[RecordingEntry]:
    """Entries for every kept stream × block of one Open Ephys root (stream order, then block order)."""
    import spikeinterface.extractors as se

    check_openephys_tree(root)
    kept, stream_names, n_blocks = kept_streams(
        root, session_folder, log, input_format=input_format, record_nodes=record_nodes
    )
    source = "Open Ephys sync timestamps" if load_sync_timestamps else "sampling rate (no sync timestamps)"
    entries = []
    for stream in kept:
        node_exp_ids = experiment_ids(node_folder_for(root, stream))  # D24: per record node
        _node, oe_stream = split_stream_name(stream)
        for block_index in range(n_blocks):
            experiment = f"experiment{node_exp_ids[block_index]}"
            try:
                raw = se.read_openephys(
                    root,
                    stream_name=stream,
                    block_index=block_index,
                    load_sync_timestamps=load_sync_timestamps,
                )
            except Exception as exc:
                raise DispatchError(
                    f"cannot read Open Ephys stream {stream} block {block_index} ({type(exc).__name__}: {exc})",
                    root,
                ) from exc
            lfp = None
            if oe_stream.endswith("-AP"):
                lfp_stream = stream[: -len("-AP")] + "-LFP"
                if lfp_stream in stream_names:
                    try:
                        lfp = se.read_openephys(
                            root,
                            stream_name=lfp_stream,
                            block_index=block_index,
                            load_sync_timestamps=load_sync_timestamps,
                        )
                    except Exception as exc:
                        log.swallow(f"No LFP stream found for {stream}", exc)
                else:
                    log.notes.append(f"No LFP stream found for {stream}")
            entries.append(
                open_ephys_entry(
                    session_name, session_folder, root, experiment, stream, block_index, raw, lfp, source, log
                )
            )
    return entries


def open_ephys_entry(
    session_name: str | None,
    session_folder: Path,
    root: Path,
    experiment: str,
    stream: str,
    block_index: int,
    raw,
    lfp,
    timestamp_source: str,
    log: DispatchLog,
) -> RecordingEntry:
    """One Open Ephys-based recording (``openephys`` and ``aind``), after the empty-probe-name fix (D14, D27)."""
    fixed = fix_empty_probe_name(raw, lfp, root, stream, block_index, log)
    if not raw.has_probe():
        log.warn(
            f"{stream} of {session_folder.name} has no probe (no settings.xml in {node_folder_for(root, stream)}?): "
            "its jobs carry no channel locations, which spike sorting needs"
        )
    return RecordingEntry(
        session_name=session_name,
        session_folder=session_folder,
        base_name=f"{experiment}_{stream}_recording",
        raw=raw,
        lfp=lfp,
        input_folder=compat_input_folder(session_folder),
        include_annotations=fixed,
        stream_name=stream,
        timestamp_source=timestamp_source,
    )


def load_openephys_session(
    folder: Path, log: DispatchLog, record_nodes: str | tuple[str, ...]
) -> list[RecordingEntry]:
    """``openephys`` input: sync timestamps on for AP and LFP (D26)."""
    return load_openephys_tree(
        folder,
        folder.name,
        folder,
        log,
        input_format="openephys",
        load_sync_timestamps=True,
        record_nodes=record_nodes,
    )
