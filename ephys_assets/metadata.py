"""Metadata of the ``ephys_job`` asset: typed values with units in their names, one key per fact, a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from ephys_assets.dispatch.model import Job
from ephys_assets.dispatch.params import DispatchParams
from ephys_assets.dispatch.plan import PlannedDispatch, job_session_key
from ephys_assets.plots import probe_layout_png
from neuro_pipelines.metadata import png_markdown


def probe_plot(recording: Any, title: str) -> dg.MetadataValue | None:
    """The recording's contacts coloured by channel group, or None when it has no locations."""
    try:
        locations = recording.get_channel_locations()
    except Exception:  # no probe attached
        return None
    groups = recording.get_property("group")
    return png_markdown(probe_layout_png(locations, groups, title), "Probe layout (colour = channel group)")


def job_metadata(
    job: Job,
    index: int,
    path: Path,
    plan: PlannedDispatch,
    params: DispatchParams,
    stale_keys: list[str],
    folder_state: dict[str, Any] | None,
    recording: Any,
) -> dict[str, Any]:
    session = job_session_key(job)
    rows = [
        {"partition_key": plan.keys[i], "recording_name": plan.result.jobs[i].recording_name, "file": f"job_{i}.json"}
        for i in plan.session_indices(session)
    ]
    metadata: dict[str, Any] = {
        "session": dg.MetadataValue.text(str(job.session_name)),
        "recording_name": dg.MetadataValue.text(job.recording_name),
        "json_path": dg.MetadataValue.path(str(path)),
        "job_index": index,
        "channels": job.num_channels,
        "sampling_rate_hz": float(job.sampling_frequency),
        "duration_s": round(float(job.duration), 3),
        "segments": job.num_segments,
        "skip_times": job.skip_times,
        "timestamp_check": job.timestamp_message or "passed",
        "lfp_paired": job.recording_lfp_dict is not None,
        "jobs_in_session": len(rows),
        "session_recordings": dg.MetadataValue.table(
            records=[dg.TableRecord(row) for row in rows],
            schema=dg.TableSchema(
                columns=[dg.TableColumn("partition_key"), dg.TableColumn("recording_name"), dg.TableColumn("file")]
            ),
        ),
        "params": dg.MetadataValue.json(params.as_dict()),
        "dropped_streams": dg.MetadataValue.json(plan.result.log.dropped_streams),
        "swallowed_errors": len(plan.result.log.swallowed_errors),
        "stale_partition_keys": dg.MetadataValue.json(stale_keys),
    }
    if folder_state is not None:
        metadata["dispatch_complete"] = bool(folder_state["complete"])
        metadata["stale_job_files_removed"] = dg.MetadataValue.json(folder_state["stale_files_removed"])
        metadata["stale_job_files_left"] = dg.MetadataValue.json(folder_state["stale_files_left"])
    plot = probe_plot(recording, job.recording_name)
    if plot is not None:
        metadata["probe_plot"] = plot
    return metadata
