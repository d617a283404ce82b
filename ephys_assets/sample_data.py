"""Generators of small, real-format ephys sessions for tests and the demo (pure, Dagster-free).

Every session is built around the REAL metadata shipped in ``data/ephys-metadata`` (SpikeGLX ``.meta``, Open Ephys
``settings.xml`` / ``structure.oebin``) with short, seeded int16 noise traces. Nothing here imports SpikeInterface
at module level except the generators that need it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

import numpy as np

from neuro_core.project import PROJECT_ROOT

METADATA_ROOT = PROJECT_ROOT / "data" / "ephys-metadata"
SPIKEGLX_META = METADATA_ROOT / "spikeglx"
OPENEPHYS_META = METADATA_ROOT / "openephys"
OE_NP2_NODE = OPENEPHYS_META / "OE_Neuropix-PXI-NP2-4shank-binary" / "Record_Node_101"
OE_NP2_OEBIN = OE_NP2_NODE / "experiment4" / "recording2" / "structure.oebin"
OE_ONEBOX_NODE = OPENEPHYS_META / "OE_OneBox-NP2014-binary" / "Record_Node_101"
OE_ONEBOX_OEBIN = OE_ONEBOX_NODE / "experiment1" / "recording1" / "structure.oebin"

TIMESTAMP_FAULTS = ("jump", "negative", "zeros")


def seeded_traces(n_samples: int, n_channels: int, seed: int) -> np.ndarray:
    """Deterministic int16 noise of shape (n_samples, n_channels)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-200, 200, size=(n_samples, n_channels), dtype=np.int16)


def _read_meta(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            pairs.append((key, value))
    return pairs


def _write_meta(path: Path, pairs: Sequence[tuple[str, str]], updates: dict[str, str]) -> None:
    seen = set()
    lines = []
    for key, value in pairs:
        if key in updates:
            value = updates[key]
            seen.add(key)
        lines.append(f"{key}={value}")
    lines.extend(f"{key}={value}" for key, value in updates.items() if key not in seen)
    path.write_text("\n".join(lines) + "\n")


def _write_bin(path: Path, traces: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(traces, dtype=np.int16).tofile(path)


def _spikeglx_pair(
    folder: Path,
    stem: str,
    source_meta: Path,
    n_samples: int,
    seed: int,
    updates: dict[str, str] | None = None,
) -> None:
    """Write ``<stem>.bin`` (+ ``.meta`` copied from ``source_meta``) with rewritten fileName / fileSizeBytes."""
    pairs = _read_meta(source_meta)
    meta = dict(pairs)
    meta.update(updates or {})
    n_channels = int(meta["nSavedChans"])
    traces = seeded_traces(n_samples, n_channels, seed)
    bin_path = folder / f"{stem}.bin"
    _write_bin(bin_path, traces)
    all_updates = {**(updates or {}), "fileName": str(bin_path), "fileSizeBytes": str(traces.nbytes)}
    all_updates["fileTimeSecs"] = str(
        n_samples / float(meta.get("imSampRate", meta.get("niSampRate", 30000)))
    )
    _write_meta(folder / f"{stem}.meta", pairs, all_updates)


def _lf_updates_from_ap(ap_meta: Path) -> dict[str, str]:
    chan_map = dict(_read_meta(ap_meta))["~snsChanMap"]
    chan_map = re.sub(r"\(AP(\d+);(\d+):(\d+)\)", lambda m: f"(LF{m[1]};{int(m[2]) + 384}:{m[3]})", chan_map)
    return {
        "imSampRate": "2500",
        "snsApLfSy": "0,384,1",
        "snsSaveChanSubset": "384:767,768",
        "~snsChanMap": chan_map,
    }


def _nidq_meta(path: Path, bin_path: Path, n_samples: int) -> None:
    chans = "".join(f"(XA{i};{i}:{i})" for i in range(8)) + "(XD0;8:8)"
    lines = [
        "typeThis=nidq",
        f"fileName={bin_path}",
        f"fileSizeBytes={n_samples * 9 * 2}",
        f"fileTimeSecs={n_samples / 25000}",
        "nSavedChans=9",
        "niSampRate=25000",
        "niAiRangeMax=5",
        "niAiRangeMin=-5",
        "niMaxInt=32768",
        "niMNGain=200",
        "niMAGain=1",
        "snsMnMaXaDw=0,0,8,1",
        "snsSaveChanSubset=all",
        "niXDChans1=0:7",
        "niXDBytes1=1",
        "firstSample=0",
        f"~snsChanMap=(0,0,8,1,1){chans}",
    ]
    path.write_text("\n".join(lines) + "\n")


def write_spikeglx_session(
    data_root: Path,
    run: str = "sglx_session",
    durations_s: Sequence[float] = (0.2, 0.2),
    *,
    with_np2: bool = True,
    with_nidq: bool = True,
    with_lf: bool = True,
    seed: int = 0,
) -> Path:
    """SpikeGLX run folder ``<run>_g0`` with one trigger per duration.

    imec0 = NP1 (AP 30 kHz + LF 2.5 kHz, 385 saved channels), imec1 = NP2.0 4-shank wideband (no LF),
    nidq = 9 channels at 25 kHz. Returns the session folder.
    """
    folder = Path(data_root) / f"{run}_g0"
    folder.mkdir(parents=True, exist_ok=True)
    np1 = SPIKEGLX_META / "Noise_g0_t0.imec0.ap.meta"
    np2 = SPIKEGLX_META / "NP2_4_shanks.imec0.ap.meta"
    for trigger, duration in enumerate(durations_s):
        base = f"{run}_g0_t{trigger}"
        n_ap = round(duration * 30000)
        _spikeglx_pair(folder, f"{base}.imec0.ap", np1, n_ap, seed + 10 * trigger + 1)
        if with_lf:
            n_lf = round(duration * 2500)
            _spikeglx_pair(
                folder, f"{base}.imec0.lf", np1, n_lf, seed + 10 * trigger + 2, _lf_updates_from_ap(np1)
            )
        if with_np2:
            _spikeglx_pair(folder, f"{base}.imec1.ap", np2, n_ap, seed + 10 * trigger + 3)
        if with_nidq:
            n_ni = round(duration * 25000)
            bin_path = folder / f"{base}.nidq.bin"
            _write_bin(bin_path, seeded_traces(n_ni, 9, seed + 10 * trigger + 4))
            _nidq_meta(folder / f"{base}.nidq.meta", bin_path, n_ni)
    return folder


def write_spikeglx_single_probe(data_root: Path, run: str, meta_name: str, duration_s: float = 0.1) -> Path:
    """One-trigger session from any shipped AP meta (e.g. ``NP-Ultra.meta``) renamed to the standard pattern."""
    folder = Path(data_root) / f"{run}_g0"
    folder.mkdir(parents=True, exist_ok=True)
    _spikeglx_pair(folder, f"{run}_g0_t0.imec0.ap", SPIKEGLX_META / meta_name, int(duration_s * 30000), 7)
    return folder


def make_demo_session(data_root: Path, run: str = "demo_sglx") -> Path:
    """One small SpikeGLX session (NP1 + NP2 4-shank + NIDQ, two 1 s triggers) for the end-to-end demo."""
    return write_spikeglx_session(Path(data_root), run=run, durations_s=(1.0, 1.0))


# ------------------------------------------------------------------------------------------------- Open Ephys


def _oebin_without_events(oebin_path: Path, keep_folders: Sequence[str] | None = None) -> dict:
    structure = json.loads(oebin_path.read_text())
    structure["events"] = []
    structure["spikes"] = []
    if keep_folders is not None:
        structure["continuous"] = [
            c for c in structure["continuous"] if c["folder_name"].rstrip("/") in keep_folders
        ]
    return structure


def fault_timestamps(times: np.ndarray, fault: str) -> np.ndarray:
    """Corrupt a time vector (seconds) so that exactly one rule of the timestamp check fails."""
    times = times.copy()
    n = len(times)
    if fault == "jump":  # rule 2: one 10 ms gap
        times[n // 2 :] += 0.010
    elif fault == "negative":  # rule 1: 11 steps of -0.5 ms, each followed by a normal catch-up
        for k in range(11):
            i = 100 + 200 * k
            times[i] = times[i - 1] - 0.0005
    elif fault == "zeros":  # rule 3: 3 % repeated values
        step = 33
        times[1::step] = times[0:-1:step][: len(times[1::step])]
    else:
        raise ValueError(f"unknown timestamp fault {fault!r}; expected one of {TIMESTAMP_FAULTS}")
    return times


def write_openephys_record_node(
    node_folder: Path,
    oebin_path: Path,
    settings_path: Path,
    experiments: dict[int, Sequence[float]],
    *,
    seed: int = 0,
    timestamp_fault: tuple[int, int, str] | None = None,
    keep_folders: Sequence[str] | None = None,
) -> None:
    """Write ``experimentN/recordingM`` trees for one record node; durations in seconds per recording.

    ``timestamp_fault`` = (experiment, recording, fault) corrupts the AP ``timestamps.npy`` of that recording.
    """
    structure = _oebin_without_events(oebin_path, keep_folders)
    node_folder.mkdir(parents=True, exist_ok=True)
    for position, experiment in enumerate(sorted(experiments)):
        settings_name = "settings.xml" if position == 0 else f"settings_{position + 1}.xml"
        shutil.copyfile(settings_path, node_folder / settings_name)
        for rec_index, duration in enumerate(experiments[experiment], start=1):
            rec_folder = node_folder / f"experiment{experiment}" / f"recording{rec_index}"
            rec_folder.mkdir(parents=True, exist_ok=True)
            (rec_folder / "structure.oebin").write_text(json.dumps(structure, indent=4))
            for s_index, stream in enumerate(structure["continuous"]):
                rate = float(stream["sample_rate"])
                n_samples = round(duration * rate)
                stream_folder = rec_folder / "continuous" / stream["folder_name"].rstrip("/")
                traces = seeded_traces(
                    n_samples, int(stream["num_channels"]), seed + 100 * experiment + 10 * rec_index + s_index
                )
                _write_bin(stream_folder / "continuous.dat", traces)
                first_sample = 1000 * rec_index
                np.save(
                    stream_folder / "sample_numbers.npy",
                    np.arange(first_sample, first_sample + n_samples, dtype=np.int64),
                )
                times = (first_sample + np.arange(n_samples)) / rate
                if (
                    timestamp_fault is not None
                    and timestamp_fault[:2] == (experiment, rec_index)
                    and stream["folder_name"].rstrip("/").endswith("-AP")
                ):
                    times = fault_timestamps(times, timestamp_fault[2])
                np.save(stream_folder / "timestamps.npy", times.astype(np.float64))


def write_openephys_session(
    data_root: Path,
    name: str = "oe_session",
    experiments: dict[int, Sequence[float]] | None = None,
    *,
    seed: int = 0,
    timestamp_fault: tuple[int, int, str] | None = None,
    record_node: str = "Record Node 101",
) -> Path:
    """Open Ephys binary session (GUI 0.6.7, NP2 4-shank metadata with an NP1032 settings.xml).

    Default: experiment1 with recording1 + recording2, experiment2 with recording1 → 3 AP jobs with LFP.
    """
    experiments = experiments or {1: (0.2, 0.2), 2: (0.2,)}
    folder = Path(data_root) / name
    write_openephys_record_node(
        folder / record_node,
        OE_NP2_OEBIN,
        OE_NP2_NODE / "settings.xml",
        experiments,
        seed=seed,
        timestamp_fault=timestamp_fault,
    )
    return folder


def write_openephys_onebox_session(data_root: Path, name: str = "oe_onebox", duration_s: float = 0.1) -> Path:
    """OneBox session: wideband ``OneBox-111.ProbeA`` plus the 12-channel ADC stream that must never be dispatched."""
    folder = Path(data_root) / name
    write_openephys_record_node(
        folder / "Record Node 101", OE_ONEBOX_OEBIN, OE_ONEBOX_NODE / "settings.xml", {1: (duration_s,)}
    )
    return folder


# ------------------------------------------------------------------------------------------------------ AIND


def write_aind_session(
    data_root: Path,
    name: str = "ecephys_123456_2024-01-01_10-00-00",
    *,
    layout: str = "new",
    experiments: dict[int, Sequence[float]] | None = None,
    with_description: bool = True,
    skip_zarr: Sequence[str] = (),
) -> Path:
    """AIND asset: ``ecephys/ecephys_clipped`` Open Ephys tree + ``ecephys_compressed/<exp>_<stream>.zarr``.

    ``layout``: "new" (under ``ecephys/``), "old" (no ``ecephys/`` level) or "uncompressed" (Record Node directly
    under ``ecephys/``). ``skip_zarr`` lists full stream names whose Zarr is not written.
    """
    import spikeinterface.extractors as se
    from spikeinterface.extractors.neoextractors import OpenEphysBinaryRecordingExtractor

    experiments = experiments or {1: (0.1,)}
    session = Path(data_root) / name
    session.mkdir(parents=True, exist_ok=True)
    if with_description:
        (session / "data_description.json").write_text(json.dumps({"name": name}))
    (session / "subject.json").write_text(
        json.dumps({"subject_id": name.split("_")[1] if "_" in name else name})
    )
    if layout == "uncompressed":
        write_openephys_record_node(
            session / "ecephys" / "Record Node 101", OE_NP2_OEBIN, OE_NP2_NODE / "settings.xml", experiments
        )
        return session
    base = session / "ecephys" if layout == "new" else session
    clipped = base / "ecephys_clipped"
    write_openephys_record_node(
        clipped / "Record Node 101", OE_NP2_OEBIN, OE_NP2_NODE / "settings.xml", experiments
    )
    compressed = base / "ecephys_compressed"
    compressed.mkdir(parents=True, exist_ok=True)
    stream_names, _ = OpenEphysBinaryRecordingExtractor.get_streams(clipped)
    for block_index, experiment in enumerate(sorted(experiments)):
        for stream in stream_names:
            if stream.endswith("SYNC") or stream in skip_zarr:
                continue
            recording = se.read_openephys(clipped, stream_name=stream, block_index=block_index)
            recording.save(
                format="zarr",
                folder=compressed / f"experiment{experiment}_{stream}.zarr",
                n_jobs=1,
                verbose=False,
            )
    return session


# ------------------------------------------------------------------------------------------------------- NWB


def write_nwb_session(
    data_root: Path,
    stem: str = "sample",
    *,
    duration_s: float = 0.1,
    with_locations: bool = True,
    zarr_copy: bool = True,
) -> tuple[Path, Path | None]:
    """NWB file with one device, electrode groups shank0/shank1, a 30 kHz ``ElectricalSeriesAP`` and a 2.5 kHz
    ``ElectricalSeriesLF`` in acquisition and one series in a processing module; contact positions come from the
    probe described by the shipped ``NP2_4_shanks`` meta. Optionally exported to ``<stem>.nwb.zarr`` as well.
    """
    from datetime import datetime

    import probeinterface as pi
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries

    n_channels = 16
    probe = pi.read_spikeglx(SPIKEGLX_META / "NP2_4_shanks.imec0.ap.meta")
    positions = probe.contact_positions[:n_channels]
    nwbfile = NWBFile("synthetic ephys", stem, datetime(2024, 1, 1, tzinfo=UTC))
    device = nwbfile.create_device(name="NeuropixelsProbe", manufacturer="IMEC")
    groups = [nwbfile.create_electrode_group(f"shank{i}", "shank", "CA1", device) for i in range(2)]
    if with_locations:
        nwbfile.add_electrode_column("rel_x", "x position on the probe (um)")
        nwbfile.add_electrode_column("rel_y", "y position on the probe (um)")
    for ch in range(n_channels):
        extra = {"rel_x": float(positions[ch, 0]), "rel_y": float(positions[ch, 1])} if with_locations else {}
        nwbfile.add_electrode(group=groups[ch // 8], location="CA1", **extra)
    region = nwbfile.create_electrode_table_region(list(range(n_channels)), "all electrodes")
    for name, rate in (("ElectricalSeriesAP", 30000.0), ("ElectricalSeriesLF", 2500.0)):
        data = seeded_traces(round(duration_s * rate), n_channels, int(rate))
        nwbfile.add_acquisition(
            ElectricalSeries(name=name, data=data, electrodes=region, rate=rate, conversion=1e-6)
        )
    module = nwbfile.create_processing_module("ecephys", "processed")
    module.add(
        ElectricalSeries(
            name="ProcessedSeries", data=seeded_traces(300, n_channels, 5), electrodes=region, rate=30000.0
        )
    )
    Path(data_root).mkdir(parents=True, exist_ok=True)
    h5_path = Path(data_root) / f"{stem}.nwb"
    with NWBHDF5IO(str(h5_path), "w") as io:
        io.write(nwbfile)
    zarr_path = None
    if zarr_copy:
        from hdmf_zarr.nwb import NWBZarrIO

        zarr_path = Path(data_root) / f"{stem}_zarr.nwb.zarr"
        with NWBHDF5IO(str(h5_path), "r") as read_io, NWBZarrIO(str(zarr_path), "w") as export_io:
            export_io.export(src_io=read_io, write_args={"link_data": False})
    return h5_path, zarr_path
