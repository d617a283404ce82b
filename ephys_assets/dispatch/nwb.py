"""``nwb`` loader: HDF5 or Zarr NWB files; one job source per acquisition ElectricalSeries ≥ 10 kHz with locations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.model import DispatchLog, RecordingEntry
from ephys_assets.dispatch.params import DispatchParams
from ephys_assets.dispatch.sessions import data_root_entries

MIN_SAMPLING_RATE_HZ = 10_000


def is_nwb_entry(path: Path) -> bool:
    """``.nwb`` files, ``.nwb`` directories and ``.nwb.zarr`` directories (D19)."""
    return path.name.endswith(".nwb") or (path.is_dir() and path.name.endswith(".nwb.zarr"))


def nwb_stem(path: Path) -> str:
    name = path.name
    for suffix in (".nwb.zarr", ".nwb"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def find_nwb_files(
    data_root: Path, params: DispatchParams, sessions: Sequence[str] | None = None
) -> list[Path]:
    if params.nwb_files:
        files = []
        for item in params.nwb_files:
            path = Path(item)
            if not path.is_absolute():
                path = path if path.exists() else data_root / item
            if not path.exists():
                raise DispatchError("NWB file listed in nwb_files does not exist", path)
            files.append(Path(os.path.abspath(path)))
    else:
        entries = data_root_entries(data_root)
        if sessions:
            entries = [p for p in entries if p.name in set(sessions)]
        dirs = [p for p in entries if p.is_dir() and not is_nwb_entry(p)]
        # One plain folder: look inside it; never descend into a folder that is itself a Zarr NWB store.
        search = (
            [p for p in dirs[0].iterdir()]
            if len(dirs) == 1 and not any(is_nwb_entry(p) for p in entries)
            else entries
        )
        files = sorted((p for p in search if is_nwb_entry(p)), key=lambda p: p.name)
    if not files:
        raise DispatchError("No NWB files found in the data folder", data_root)
    if len(files) > 1 and not params.multi_session:
        raise DispatchError(
            "Multiple NWB files found in the data folder. Please only add one at a time", data_root
        )
    return files


def build_probe_dict(file_path: Path, recording, log: DispatchLog) -> dict[str, Any] | None:
    """Rebuild the probe from the NWB electrode groups' single device (HDF5 or Zarr backend, D20)."""
    import numpy as np
    import probeinterface as pi

    try:
        if file_path.is_dir():
            from hdmf_zarr.nwb import NWBZarrIO as IO
        else:
            from pynwb import NWBHDF5IO as IO
        with IO(str(file_path), "r") as io:
            nwbfile = io.read()
            group_names = (
                set(recording.get_channel_groups().tolist())
                if recording.get_channel_groups() is not None
                else set()
            )
            groups = [
                nwbfile.electrode_groups[name]
                for name in sorted(group_names)
                if name in nwbfile.electrode_groups
            ]
            devices = {g.device.name: g.device for g in groups}
            if len(devices) != 1:
                raise ValueError(
                    f"expected exactly one device for the electrode groups, found {sorted(devices)}"
                )
            device = next(iter(devices.values()))
            locations = {g.location for g in groups}
            probe = pi.Probe(ndim=2, si_units="um", name=device.name, manufacturer=device.manufacturer or "")
            probe.set_contacts(
                positions=recording.get_channel_locations(), shapes="circle", shape_params={"radius": 5}
            )
            probe.set_contact_ids([str(c) for c in recording.get_channel_ids()])
            probe.set_device_channel_indices(np.arange(recording.get_num_channels()))
            channel_groups = recording.get_channel_groups()
            if len(set(channel_groups.tolist())) > 1:
                probe.set_shank_ids([str(g) for g in channel_groups])
            probe.annotate(description=device.description or "")
            if len(locations) == 1:
                probe.annotate(electrode_group_location=next(iter(locations)))
            return probe.to_dict(array_as_list=True)
    except Exception as exc:
        log.swallow(f"NWB probe reconstruction for {file_path.name}", exc)
        return None


def _has_locations(recording) -> bool:
    try:
        recording.get_channel_locations()
    except Exception:
        return False
    return True


def load_nwb_entries(
    data_root: Path, params: DispatchParams, log: DispatchLog, sessions: Sequence[str] | None = None
) -> list[RecordingEntry]:
    from spikeinterface.extractors.nwbextractors import NwbRecordingExtractor, read_nwb_recording

    entries = []
    for file_path in find_nwb_files(data_root, params, sessions):
        try:
            series_paths = NwbRecordingExtractor.fetch_available_electrical_series_paths(file_path)
        except Exception as exc:
            raise DispatchError(f"cannot open NWB file ({type(exc).__name__}: {exc})", file_path) from exc
        if not series_paths:
            raise DispatchError(
                "NWB file holds no ElectricalSeries (no electrodes table); expected acquisition ElectricalSeries "
                "linked to an electrodes table",
                file_path,
            )
        for series_path in series_paths:
            if "acquisition" not in series_path:
                log.drop(f"{file_path.name}/{series_path}", "not in acquisition")
                continue
            try:
                recording = read_nwb_recording(file_path=str(file_path), electrical_series_path=series_path)
            except Exception as exc:
                raise DispatchError(
                    f"cannot read ElectricalSeries {series_path} ({type(exc).__name__}: {exc}); "
                    "expected an electrodes table with groups",
                    file_path,
                ) from exc
            if recording.get_sampling_frequency() < MIN_SAMPLING_RATE_HZ:
                log.drop(f"{file_path.name}/{series_path}", "sampling rate < 10 kHz, probably an LFP signal")
                continue
            if not _has_locations(recording):
                log.drop(f"{file_path.name}/{series_path}", "no channel locations")
                continue
            entries.append(
                RecordingEntry(
                    session_name=nwb_stem(file_path),
                    session_folder=file_path,
                    base_name=f"block0_{series_path.replace('/', '-')}_recording",
                    raw=recording,
                    probe_dict=build_probe_dict(file_path, recording, log),
                    stream_name=series_path,
                    timestamp_source="NWB",
                )
            )
    return entries
