"""Metadata of the ``ephys_job`` asset: typed values with units in their names, one key per fact, pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from ephys_assets.dispatch.model import Job
from ephys_assets.dispatch.params import DispatchParams
from ephys_assets.dispatch.plan import PlannedDispatch, job_session_key
from ephys_assets.plots import probe_png, recording_png
from neuro_pipelines.metadata import png_markdown


def probe_plot(recording: Any, name: str) -> dg.MetadataValue | None:
    """The recording's probe(s) drawn by probeinterface, contacts coloured by channel group; None when the
    recording has no probe attached (e.g. an NWB electrical series without electrode locations)."""
    if recording is None or not recording.has_probe():
        return None
    probegroup = recording.get_probegroup()
    models = ", ".join(sorted({str(p.annotations.get("model_name") or "probe") for p in probegroup.probes}))
    return png_markdown(
        probe_png(probegroup, _channel_groups(recording), name),
        f"{models}: the contacts of {name}, coloured by channel group",
    )


def _channel_groups(recording: Any) -> np.ndarray:
    """The recording's channel groups; one group 0 when it has none (a probe-less recording has no "group")."""
    groups = recording.get_channel_groups()
    return np.zeros(recording.get_num_channels(), dtype=int) if groups is None else np.asarray(groups)


def recording_plot(recording: Any, name: str) -> dg.MetadataValue:
    """Channels per channel group and samples per segment of the reloaded recording."""
    samples = [recording.get_num_samples(segment_index=k) for k in range(recording.get_num_segments())]
    return png_markdown(
        recording_png(_channel_groups(recording), samples, recording.get_sampling_frequency(), name),
        f"{name}: channels per group, samples per segment",
    )


def _channels_per_group(recording: Any) -> dict[str, int]:
    groups = [str(g) for g in _channel_groups(recording)]
    return {g: groups.count(g) for g in sorted(set(groups), key=lambda g: (len(g), g))}


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
    """Metadata of one written job: the recording, where it went, the session's other jobs, pictures."""
    session = job_session_key(job)
    rows = [
        {
            "partition_key": plan.keys[i],
            "recording_name": plan.result.jobs[i].recording_name,
            "file": f"job_{i}.json",
        }
        for i in plan.session_indices(session)
    ]
    metadata: dict[str, Any] = {
        "session": dg.MetadataValue.text(str(job.session_name)),
        "recording_name": dg.MetadataValue.text(job.recording_name),
        "json_path": dg.MetadataValue.path(str(path)),
        "job_index": dg.MetadataValue.int(index),
        "channels": dg.MetadataValue.int(job.num_channels),
        "sampling_rate_hz": dg.MetadataValue.float(round(float(job.sampling_frequency), 3)),
        "duration_s": dg.MetadataValue.float(round(float(job.duration), 3)),
        "segments": dg.MetadataValue.int(job.num_segments),
        "samples_per_segment": dg.MetadataValue.json([int(n) for n in job.num_samples]),
        "skip_times": dg.MetadataValue.bool(bool(job.skip_times)),
        "timestamps_ok": dg.MetadataValue.bool(job.timestamp_message is None),
        "timestamp_source": dg.MetadataValue.text(job.timestamp_source or "sampling rate"),
        "lfp_paired": dg.MetadataValue.bool(job.recording_lfp_dict is not None),
        "jobs_in_session": dg.MetadataValue.int(len(rows)),
        "session_recordings": dg.MetadataValue.table(
            records=[dg.TableRecord(row) for row in rows],
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn("partition_key"),
                    dg.TableColumn("recording_name"),
                    dg.TableColumn("file"),
                ]
            ),
        ),
        "params": dg.MetadataValue.json(params.as_dict()),
        "dropped_streams": dg.MetadataValue.json(plan.result.log.dropped_streams),
        "swallowed_errors": dg.MetadataValue.int(len(plan.result.log.swallowed_errors)),
        "stale_partition_keys": dg.MetadataValue.json(stale_keys),
    }
    if job.timestamp_message is not None:  # the failed rule, as the original words it
        metadata["timestamp_problem"] = dg.MetadataValue.text(job.timestamp_message)
    if folder_state is not None:
        metadata["dispatch_complete"] = dg.MetadataValue.bool(bool(folder_state["complete"]))
        metadata["stale_job_files_removed"] = dg.MetadataValue.json(folder_state["stale_files_removed"])
        metadata["stale_job_files_left"] = dg.MetadataValue.json(folder_state["stale_files_left"])
    if recording is not None:
        metadata["channels_per_group"] = dg.MetadataValue.json(_channels_per_group(recording))
        metadata["recording_plot"] = recording_plot(recording, job.recording_name)
        plot = probe_plot(recording, job.recording_name)
        if plot is not None:
            metadata["probe_plot"] = plot
    return metadata
