"""Reload a written job JSON the way the downstream capsules do (pure; SpikeInterface)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.model import Job


def verify_job_file(path: Path, data_root: Path, job: Job) -> tuple[bool, dict[str, Any], Any]:
    """Load ``path`` with ``spikeinterface.load(..., base_folder=data_root)`` and compare channels, segments and
    samples with the job. Returns (ok, what was found, the reloaded recording)."""
    import spikeinterface as si

    written = json.loads(path.read_text())
    recording = si.load(written["recording_dict"], base_folder=data_root)
    samples = [recording.get_num_samples(segment_index=k) for k in range(recording.get_num_segments())]
    found: dict[str, Any] = {
        "channels": recording.get_num_channels(),
        "segments": recording.get_num_segments(),
        "samples_per_segment": samples,
    }
    ok = found == {
        "channels": job.num_channels,
        "segments": job.num_segments,
        "samples_per_segment": list(job.num_samples),
    }
    if "recording_lfp_dict" in written:
        lfp = si.load(written["recording_lfp_dict"], base_folder=data_root)
        found["lfp_channels"] = lfp.get_num_channels()
        ok = ok and lfp.get_num_segments() == job.num_segments
    return ok, found, recording
