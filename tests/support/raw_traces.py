"""Independent readers of the raw binary files the sample sessions hold (to compare reloaded traces with)."""

import json
from pathlib import Path

import numpy as np


def spikeglx_raw_traces(session: Path, stream: str, segment: int) -> np.ndarray:
    """Independent reader: the int16 .bin of trigger ``segment`` as (samples, saved channels)."""
    bin_path = next(session.glob(f"*_t{segment}.{stream}.bin"))
    meta = dict(line.split("=", 1) for line in bin_path.with_suffix(".meta").read_text().splitlines())
    return np.fromfile(bin_path, dtype=np.int16).reshape(-1, int(meta["nSavedChans"]))


def spikeglx_column(channel_id: str) -> int:
    """``imec1.ap#AP17`` → column 17 of the .bin."""
    return int(channel_id.split("#")[1][2:])


def openephys_raw_traces(
    session: Path, experiment: int, recording: int, folder: str
) -> tuple[np.ndarray, list[str]]:
    rec = next(session.glob(f"*/experiment{experiment}/recording{recording}"))
    structure = json.loads((rec / "structure.oebin").read_text())
    stream = next(s for s in structure["continuous"] if s["folder_name"].rstrip("/") == folder)
    names = [c["channel_name"] for c in stream["channels"]]
    data = np.fromfile(rec / "continuous" / folder / "continuous.dat", dtype=np.int16).reshape(-1, len(names))
    return data, names
