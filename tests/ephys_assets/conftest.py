"""Session-scoped sample sessions built from the real metadata in data/ephys-metadata (spec §15)."""

import json
from pathlib import Path

import numpy as np
import pytest

from ephys_assets import sample_data as sd

OE_EXPERIMENTS = {1: (0.2, 0.15), 2: (0.1,)}


@pytest.fixture(scope="session")
def sglx_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sglx_data")
    sd.write_spikeglx_session(root, run="sglx_sessionA", durations_s=(0.2, 0.1))
    return root


@pytest.fixture(scope="session")
def oe_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("oe_data")
    sd.write_openephys_session(root, "oe_session", OE_EXPERIMENTS, timestamp_fault=(1, 2, "jump"))
    return root


@pytest.fixture(scope="session")
def oe_fault_roots(tmp_path_factory) -> dict[str, Path]:
    roots = {}
    for fault in sd.TIMESTAMP_FAULTS:
        root = tmp_path_factory.mktemp(f"oe_{fault}")
        sd.write_openephys_session(root, f"oe_{fault}", {1: (0.1,)}, timestamp_fault=(1, 1, fault))
        roots[fault] = root
    return roots


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
