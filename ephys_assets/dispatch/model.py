"""Plain data holders shared by the loaders and the job builder."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("ephys_assets.dispatch")


@dataclass
class DispatchLog:
    """What happened besides the jobs: dropped streams, swallowed errors (D18), skipped parts, timestamp resets."""

    dropped_streams: list[str] = field(default_factory=list)
    swallowed_errors: list[str] = field(default_factory=list)
    skipped_recordings: list[str] = field(default_factory=list)
    timestamp_resets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # jobs are written, but something downstream will miss

    def drop(self, stream: str, reason: str) -> None:
        self.dropped_streams.append(f"{stream}: {reason}")
        logger.info("Dropping stream %s: %s", stream, reason)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        logger.warning("WARNING: %s", text)

    def swallow(self, context: str, exc: BaseException) -> None:
        text = f"{context}: {type(exc).__name__}: {exc}"
        self.swallowed_errors.append(text)
        logger.warning(text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dropped_streams": list(self.dropped_streams),
            "swallowed_errors": list(self.swallowed_errors),
            "skipped_recordings": list(self.skipped_recordings),
            "timestamp_resets": list(self.timestamp_resets),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


@dataclass
class RecordingEntry:
    """One loader result: a recording (all its segments) to cut into jobs."""

    session_name: str | None
    session_folder: Path | None  # the logical (unresolved) folder the recording came from
    base_name: str  # e.g. block0_imec0.ap_recording
    raw: Any  # spikeinterface BaseRecording
    lfp: Any | None = None
    input_folder: str | None = None  # "../data/<session>" compatibility form
    probe_dict: dict[str, Any] | None = None
    include_annotations: bool = False  # D14: only for recordings whose probe was fixed
    stream_name: str | None = None
    timestamp_source: str = "sampling rate"


@dataclass
class Job:
    """One job JSON. ``to_json_dict`` gives the exact field order of the original."""

    session_name: str | None
    recording_name: str
    recording_dict: dict[str, Any]
    skip_times: bool
    duration: float
    input_folder: str | None
    debug: bool
    multi_input: bool
    recording_lfp_dict: dict[str, Any] | None = None
    probe_dict: dict[str, Any] | None = None
    # Not written into the JSON; used for partition keys and metadata.
    base_recording_name: str = ""
    session_folder: Path | None = None
    num_channels: int = 0
    sampling_frequency: float = 0.0
    num_segments: int = 0
    num_samples: tuple[int, ...] = ()
    channel_ids: tuple[str, ...] = ()
    timestamp_message: str | None = None
    timestamp_source: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "session_name": self.session_name,
            "recording_name": self.recording_name,
            "recording_dict": self.recording_dict,
            "skip_times": self.skip_times,
            "duration": self.duration,
            "input_folder": self.input_folder,
            "debug": self.debug,
        }
        if self.recording_lfp_dict is not None:
            out["recording_lfp_dict"] = self.recording_lfp_dict
        if self.probe_dict is not None:
            out["probe_dict"] = self.probe_dict
        out["multi_input"] = self.multi_input
        return out
