"""Cut loaded recordings into jobs (order: docs/ephys-dispatch.md) and write ``job_<i>.json`` files."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.model import DispatchLog, Job, RecordingEntry
from ephys_assets.dispatch.params import DispatchParams
from ephys_assets.dispatch.serialize import recording_to_dict
from ephys_assets.dispatch.timestamps import check_recording_times

logger = logging.getLogger("ephys_assets.dispatch")


@dataclass
class DispatchResult:
    """All jobs of one dispatch, in emission order, plus the log of what was dropped or swallowed."""

    jobs: list[Job]
    log: DispatchLog = field(default_factory=DispatchLog)


def load_entries(
    data_root: Path, params: DispatchParams, log: DispatchLog, sessions: Sequence[str] | None = None
):
    """Run the loader of ``params.input`` over the data folder (or only the named session folders)."""
    from ephys_assets.dispatch import sessions as sess

    fmt = params.input
    if fmt in ("spikeglx", "openephys", "aind"):
        folders = sess.require_sessions(
            sess.list_session_folders(data_root, fmt, only=sessions), fmt, params.multi_session, data_root
        )
        entries: list[RecordingEntry] = []
        for folder in folders:
            if fmt == "spikeglx":
                from ephys_assets.dispatch.spikeglx import load_spikeglx_session

                entries += load_spikeglx_session(folder, log)
            elif fmt == "openephys":
                from ephys_assets.dispatch.openephys import load_openephys_session

                entries += load_openephys_session(folder, log, params.record_nodes)
            else:
                from ephys_assets.dispatch.aind import load_aind_session

                entries += load_aind_session(folder, log, params.record_nodes)
        return entries
    if fmt == "nwb":
        from ephys_assets.dispatch.nwb import load_nwb_entries

        return load_nwb_entries(data_root, params, log, sessions)
    from ephys_assets.dispatch.si_input import load_spikeinterface_entries

    return load_spikeinterface_entries(data_root, params, log, sessions)


def _duration_s(recording) -> float:
    fs = recording.get_sampling_frequency()
    return sum(recording.get_num_samples(segment_index=k) / fs for k in range(recording.get_num_segments()))


def _split_segments(recording) -> list:
    return [recording.select_segments([k]) for k in range(recording.get_num_segments())]


def debug_clip(recording, duration_s: float):
    """Keep frames 0…min(int(duration·fs), n) of every segment, at the stream's own rate; segments stay separate."""
    import spikeinterface as si

    fs = recording.get_sampling_frequency()
    clipped = []
    for k in range(recording.get_num_segments()):
        n_samples = recording.get_num_samples(segment_index=k)
        end = min(int(duration_s * fs), n_samples)
        clipped.append(recording.select_segments([k]).frame_slice(start_frame=0, end_frame=end))
    return si.append_recordings(clipped)


def _groups(recording) -> list:
    groups = recording.get_property("group")
    if groups is None:
        return [0]
    return sorted(set(groups.tolist()))


def build_jobs(
    entries: Sequence[RecordingEntry], params: DispatchParams, data_root: Path, log: DispatchLog
) -> list[Job]:
    """Per entry: min duration, segment split, timestamp check, debug clip, duration, group split; one job per group."""
    jobs: list[Job] = []
    for entry in entries:
        raw_parts = _split_segments(entry.raw) if params.split_segments else [entry.raw]
        lfp_parts = (
            (_split_segments(entry.lfp) if params.split_segments else [entry.lfp])
            if entry.lfp is not None
            else [None] * len(raw_parts)
        )
        if len(lfp_parts) != len(raw_parts):
            log.swallow(
                f"LFP of {entry.base_name}", ValueError("LFP and AP segment counts differ; LFP dropped")
            )
            lfp_parts = [None] * len(raw_parts)
        for index, (part, lfp_part) in enumerate(zip(raw_parts, lfp_parts, strict=True), start=1):
            name = entry.base_name + (str(index) if params.split_segments else "")
            part_duration = _duration_s(part)
            # D16: the minimum duration is judged per part (after the segment split, before clipping).
            if params.min_recording_duration is not None and part_duration < params.min_recording_duration:
                text = (
                    f"Skipping recording {entry.session_name}-{name} with duration {round(part_duration, 2)}s"
                )
                logger.info(text)
                log.skipped_recordings.append(text)
                continue
            skip_times = False
            message = None
            if not params.skip_timestamps_check:
                message = check_recording_times(part)
                if message is not None:
                    logger.info("\t\tResetting timestamps: %s", message)
                    log.timestamp_resets.append(f"{entry.session_name}-{name}: {message}")
                    part.reset_times()
                    skip_times = True
            if params.debug:
                part = debug_clip(part, params.debug_duration)
                if lfp_part is not None:
                    lfp_part = debug_clip(lfp_part, params.debug_duration)
            # The original reports SpikeInterface's total duration: from the time vector when it is kept (a 10 ms
            # gap adds 10 ms); after a reset (or without one) that is samples / rate.
            duration = round(float(part.get_total_duration() if params.skip_timestamps_check else _duration_s(part)), 2)
            groups = _groups(part)
            if params.split_groups and len(groups) > 1:
                group_parts = part.split_by("group")
                lfp_groups = lfp_part.split_by("group") if lfp_part is not None else {}
                pieces = [(f"_group{g}", group_parts[g], lfp_groups.get(g)) for g in groups]
                for g in groups:
                    if lfp_part is not None and g not in lfp_groups:
                        log.notes.append(f"group {g} of {name} missing in its LFP; no recording_lfp_dict")
                        logger.warning(log.notes[-1])
            else:
                pieces = [("", part, lfp_part)]
            for suffix, rec, lfp_rec in pieces:
                jobs.append(
                    Job(
                        session_name=entry.session_name,
                        recording_name=name + suffix,
                        recording_dict=recording_to_dict(rec, data_root, entry.include_annotations),
                        skip_times=skip_times,
                        duration=duration,
                        input_folder=entry.input_folder,
                        debug=params.debug,
                        multi_input=params.multi_session,
                        recording_lfp_dict=None if lfp_rec is None else recording_to_dict(lfp_rec, data_root),
                        probe_dict=entry.probe_dict,
                        base_recording_name=name + suffix,
                        session_folder=entry.session_folder,
                        num_channels=rec.get_num_channels(),
                        sampling_frequency=float(rec.get_sampling_frequency()),
                        num_segments=rec.get_num_segments(),
                        num_samples=tuple(
                            rec.get_num_samples(segment_index=k) for k in range(rec.get_num_segments())
                        ),
                        channel_ids=tuple(str(c) for c in rec.get_channel_ids()),
                        timestamp_message=message,
                        timestamp_source=entry.timestamp_source,
                    )
                )
    if params.multi_session:
        for job in jobs:
            job.recording_name = f"{job.session_name}__{job.recording_name}"
    return jobs


def discover_jobs(
    data_root: str | Path, params: DispatchParams, sessions: Sequence[str] | None = None
) -> DispatchResult:
    """Load the data folder (or only ``sessions``) and build every job, in memory; nothing is written."""
    import os

    data_root = Path(os.path.abspath(data_root))  # absolute but NOT resolved: symlinks stay (D13)
    log = DispatchLog()
    log.notes.extend(params.warnings)
    entries = load_entries(data_root, params, log, sessions)
    if not entries:
        raise DispatchError("No recordings found to process after parsing the input folder!", data_root)
    jobs = build_jobs(entries, params, data_root, log)
    logger.info("Generated %d job config files", len(jobs))
    return DispatchResult(jobs=jobs, log=log)


def job_json_text(job: Job) -> str:
    """The file content: indent 4, fields in the original's order."""
    return json.dumps(job.to_json_dict(), indent=4)


def write_jobs(jobs: Sequence[Job], results_dir: str | Path, *, prune_stale: bool = True) -> list[Path]:
    """Write ``job_<i>.json`` atomically (temp + rename) in emission order; returns the paths.

    With ``prune_stale``, ``job_<i>.json`` files of an earlier dispatch that are not part of this one are removed
    after every file of this one was written (a crash before that leaves the earlier files in place).
    """
    from ephys_assets.dispatch.outputs import job_file_name, remove_stale_job_files
    from neuro_core.files import write_text_atomic

    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        write_text_atomic(results_dir / job_file_name(i), job_json_text(job)) for i, job in enumerate(jobs)
    ]
    if prune_stale:
        for path in remove_stale_job_files(results_dir, [p.name for p in paths]):
            logger.info("Removed stale job file %s", path)
    return paths
