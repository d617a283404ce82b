"""Run configuration of the job asset: the CLI's parameter names, plus which session to dispatch."""

import json
from typing import Any

import dagster as dg
from pydantic import Field

from ephys_assets.dispatch.params import DispatchParams, params_from_mapping


class DispatchConfig(dg.Config):
    """Same names and defaults as ``ephys-dispatch`` (spec §2, D1/D4: one set of defaults everywhere)."""

    input: str = ""
    split_segments: bool = True
    split_groups: bool = True
    debug: bool = False
    debug_duration: float = 30.0
    skip_timestamps_check: bool = False
    nwb_files: list[str] = Field(default_factory=list)
    multi_session: bool = False
    min_recording_duration: float = -1.0
    spikeinterface_info: str = ""  # JSON object as a string (or a JSON file path)
    record_nodes: str = "lowest"
    sessions: list[str] = Field(
        default_factory=list
    )  # session folders (or NWB files) under data_root; empty = every session
    # "per_session": <results>/<session>/job_<i>.json; "flat": <results>/job_<i>.json (the capsule's layout)
    output_layout: str = "per_session"
    use_session_params_file: bool = True  # merge <session>/ephys_dispatch.json over these values

    def param_mapping(self) -> dict[str, Any]:
        return {
            "input": self.input or None,
            "split_segments": self.split_segments,
            "split_groups": self.split_groups,
            "debug": self.debug,
            "debug_duration": self.debug_duration,
            "skip_timestamps_check": self.skip_timestamps_check,
            "nwb_files": list(self.nwb_files) or None,
            "multi_session": self.multi_session,
            "min_recording_duration": self.min_recording_duration,
            "spikeinterface_info": self.spikeinterface_info or None,
            "record_nodes": self.record_nodes,
        }

    def to_params(self, session_overrides: dict[str, Any] | None = None) -> DispatchParams:
        return params_from_mapping({**self.param_mapping(), **(session_overrides or {})})


def config_from_params(params: DispatchParams, **extra: Any) -> dict[str, Any]:
    """The run-config dict (``ops.<asset>.config``) equivalent to validated params (used by the CLI)."""
    out: dict[str, Any] = {
        "input": params.input,
        "split_segments": params.split_segments,
        "split_groups": params.split_groups,
        "debug": params.debug,
        "debug_duration": params.debug_duration,
        "skip_timestamps_check": params.skip_timestamps_check,
        "nwb_files": list(params.nwb_files or []),
        "multi_session": params.multi_session,
        "min_recording_duration": -1.0
        if params.min_recording_duration is None
        else params.min_recording_duration,
        "spikeinterface_info": json.dumps(params.spikeinterface_info) if params.spikeinterface_info else "",
        "record_nodes": params.record_nodes
        if isinstance(params.record_nodes, str)
        else ",".join(params.record_nodes),
    }
    out.update(extra)
    return out
