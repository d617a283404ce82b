"""Session-scoped sample sessions built from the real metadata in data/ephys-metadata."""

from pathlib import Path

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
