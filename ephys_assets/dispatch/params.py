"""Dispatch parameters: one dataclass, one set of defaults for every entry point (flags, ``--params``, Dagster).

Deliberate fixes of the original's parsing (numbered as in docs/ephys-dispatch.md): D1 ``split_segments`` defaults to True everywhere and the
legacy ``concatenate`` is its deprecated inverse; D2 Nextflow keys ``no_split_segments``/``no_split_groups`` are
inverse aliases and unknown keys are rejected; D3 ``min_recording_duration`` is coerced to float (None or negative
disables); D4 ``debug_duration`` defaults to 30 s; D5 strict booleans and a validated ``input``; D6
``spikeinterface_info`` JSON string vs path; D7 ``nwb_files`` list or comma string.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.errors import DispatchError
from neuro_core.params import add_param_arguments, param, param_fields, values_from_namespace

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("aind", "spikeglx", "openephys", "nwb", "spikeinterface")
DEFAULT_DEBUG_DURATION_S = 30.0
# "lowest": one record node per Open Ephys stream (D23); "all": the original's duplicates; or explicit names.
DEFAULT_RECORD_NODES = "lowest"


@dataclass(frozen=True)
class DispatchParams:
    """Every dispatch parameter, validated; the field metadata is the one definition flags and config use."""

    input: str = param(
        "",
        "input format (required; in Dagster runs empty = detect it from the session)",
        choices=INPUT_FORMATS,
    )
    split_segments: bool = param(True, "one job per segment (--no-split-segments: one job for all segments)")
    split_groups: bool = param(True, "one job per channel group (shank)")
    debug: bool = param(False, "clip every part to --debug-duration seconds")
    debug_duration: float = param(DEFAULT_DEBUG_DURATION_S, "clip length in debug mode", gt=0, unit="s")
    skip_timestamps_check: bool = param(False, "do not check time vectors (duration from the time vector)")
    nwb_files: tuple[str, ...] | None = param(
        None, "NWB files to dispatch (list, or a comma-separated string); default: discover", input_type=list[str]
    )
    multi_session: bool = param(False, "allow several sessions in the data folder")
    min_recording_duration: float | None = param(
        None, "skip parts shorter than this; negative or empty: off", unit="s", input_type=float
    )
    spikeinterface_info: dict[str, Any] | None = param(
        None,
        "input spikeinterface: a JSON object, or a JSON file, with reader_type, reader_kwargs, …",
        input_type=str,
    )
    record_nodes: str | tuple[str, ...] = param(
        DEFAULT_RECORD_NODES,
        "Open Ephys record nodes: lowest (one per stream), all, or comma-separated names",
        input_type=str,
    )
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable view (for metadata and logs)."""
        out = asdict(self)
        out.pop("warnings")
        for key in ("nwb_files", "record_nodes"):
            if isinstance(out[key], tuple):
                out[key] = list(out[key])
        return out


def parse_bool(value: Any, name: str) -> bool:
    """Strict boolean: bool, or true/false/1/0 (case-insensitive) strings and 0/1 integers (D5)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise DispatchError(f"parameter {name!r} must be a boolean (true/false/1/0), got {value!r}", name)


def _parse_float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DispatchError(f"parameter {name!r} must be a number, got {value!r}", name) from None


def parse_min_duration(value: Any) -> float | None:
    """None or a negative number disables the filter (D3)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _parse_float(value, "min_recording_duration")
    return None if number < 0 else number


def parse_nwb_files(value: Any) -> tuple[str, ...] | None:
    """A list of paths or a comma-separated string (D7); empty means "discover"."""
    if value is None:
        return None
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [part.strip() for item in value for part in str(item).split(",")]
    else:
        raise DispatchError(
            f"nwb_files must be a list or a comma-separated string, got {value!r}", "nwb_files"
        )
    items = [item for item in items if item]
    return tuple(items) or None


def parse_json_or_file(value: Any, name: str, json_first_always: bool = False) -> dict[str, Any] | None:
    """A dict, a JSON string or a JSON file path.

    ``--params``: JSON is tried first. ``spikeinterface_info``: JSON if the string starts with ``{``, else a path
    (D6, the original tested the path first and crashed on long JSON strings).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, str | Path):
        raise DispatchError(f"{name} must be a dict, a JSON string or a JSON file path, got {value!r}", name)
    text = str(value).strip()
    looks_like_json = text.startswith("{")
    if looks_like_json or json_first_always:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            if looks_like_json:
                raise DispatchError(f"{name} is not valid JSON: {exc}", name) from None
        else:
            if not isinstance(parsed, dict):
                raise DispatchError(f"{name} must be a JSON object, got {type(parsed).__name__}", name)
            return parsed
    path = Path(text)
    if not path.is_file():
        raise DispatchError(f"{name} is neither a JSON object nor an existing JSON file", text)
    try:
        parsed = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DispatchError(f"{name} file is not valid JSON: {exc}", path) from None
    if not isinstance(parsed, dict):
        raise DispatchError(f"{name} file must hold a JSON object", path)
    return parsed


def _parse_record_nodes(value: Any) -> str | tuple[str, ...]:
    if value in (None, ""):
        return DEFAULT_RECORD_NODES
    if isinstance(value, str):
        if value in ("lowest", "all"):
            return value
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DispatchError(
        f"record_nodes must be 'lowest', 'all' or a list of names, got {value!r}", "record_nodes"
    )


PARAM_KEYS = tuple(f.name for f in param_fields(DispatchParams))
INVERSE_ALIASES = {
    "concatenate": "split_segments",
    "no_split_segments": "split_segments",
    "no_split_groups": "split_groups",
}


def params_from_mapping(raw: dict[str, Any]) -> DispatchParams:
    """Validate a ``--params`` / config / per-session mapping. Unknown keys are an error (D2)."""
    if not isinstance(raw, dict):
        raise DispatchError(f"params must be a JSON object, got {type(raw).__name__}", "params")
    unknown = sorted(set(raw) - set(PARAM_KEYS) - set(INVERSE_ALIASES))
    if unknown:
        raise DispatchError(
            f"unknown dispatch parameter(s) {unknown}; expected some of {list(PARAM_KEYS)} "
            f"(or the inverse aliases {list(INVERSE_ALIASES)})",
            "params",
        )
    notes: list[str] = []
    values: dict[str, Any] = {k: raw[k] for k in PARAM_KEYS if k in raw}
    for alias, target in INVERSE_ALIASES.items():
        if alias not in raw:
            continue
        implied = not parse_bool(raw[alias], alias)
        if alias == "concatenate":
            notes.append(
                "'concatenate' is deprecated; use split_segments (concatenate=true = split_segments=false)"
            )
            logger.warning(notes[-1])
        if target in values and parse_bool(values[target], target) != implied:
            raise DispatchError(
                f"conflicting values: {alias}={raw[alias]!r} and {target}={values[target]!r}", alias
            )
        values[target] = implied
    if values.get("input") in (None, ""):
        raise DispatchError(f"parameter 'input' is required; expected one of {list(INPUT_FORMATS)}", "input")
    if values["input"] not in INPUT_FORMATS:
        raise DispatchError(
            f"unknown input {values['input']!r}; expected one of {list(INPUT_FORMATS)}", "input"
        )
    debug_duration = values.get("debug_duration")
    params = DispatchParams(
        input=values["input"],
        split_segments=parse_bool(values.get("split_segments", True), "split_segments"),
        split_groups=parse_bool(values.get("split_groups", True), "split_groups"),
        debug=parse_bool(values.get("debug", False), "debug"),
        debug_duration=DEFAULT_DEBUG_DURATION_S
        if debug_duration in (None, "")
        else _parse_float(debug_duration, "debug_duration"),
        skip_timestamps_check=parse_bool(values.get("skip_timestamps_check", False), "skip_timestamps_check"),
        nwb_files=parse_nwb_files(values.get("nwb_files")),
        multi_session=parse_bool(values.get("multi_session", False), "multi_session"),
        min_recording_duration=parse_min_duration(values.get("min_recording_duration")),
        spikeinterface_info=parse_json_or_file(values.get("spikeinterface_info"), "spikeinterface_info"),
        record_nodes=_parse_record_nodes(values.get("record_nodes")),
        warnings=tuple(notes),
    )
    if params.debug and params.debug_duration <= 0:
        raise DispatchError(f"debug_duration must be positive, got {params.debug_duration}", "debug_duration")
    if params.input == "spikeinterface" and params.spikeinterface_info is None:
        raise DispatchError(
            "input 'spikeinterface' needs spikeinterface_info (reader_type, reader_kwargs…)", "input"
        )
    return params


def build_arg_parser() -> argparse.ArgumentParser:
    """The capsule's flags (and ``--params``, ``--concatenate``) plus our data/results folders."""
    parser = argparse.ArgumentParser(
        prog="ephys-dispatch",
        description="Dispatch ephys recordings into spike-sorting job JSON files (aind-ephys-job-dispatch): "
        "one RESULTS/job_<i>.json per recording, through the project's Dagster job ephys_dispatch_job.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CLI_EPILOG,
    )
    parser.add_argument("--data-dir", default="../data", help="input data folder [default: ../data, as the capsule]")
    parser.add_argument(
        "--results-dir", default="../results", help="output folder for job_<i>.json [default: ../results]"
    )
    add_param_arguments(parser, DispatchParams)
    parser.add_argument(
        "--concatenate", action="store_true", help="deprecated alias of --no-split-segments"
    )
    parser.add_argument(
        "--params", default=None, help="JSON string or file with the parameters; overrides every other dispatch flag"
    )
    parser.add_argument("--force", action="store_true", help="dispatch even if these sessions are unchanged")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print Dagster's own log lines")
    return parser


CLI_EPILOG = """\
examples:
  ephys-dispatch --input spikeglx --data-dir /data/session1 --results-dir /results
  ephys-dispatch --input openephys --data-dir DATA --results-dir RESULTS --no-split-groups --debug
  ephys-dispatch --params '{"input": "nwb", "split_segments": false}' --data-dir DATA --results-dir RESULTS

exit codes:
  0  every job file written
  1  some job failed (the others are written; see the summary)
  2  bad input or usage (nothing launched, nothing written)
"""


def params_from_namespace(args: argparse.Namespace) -> DispatchParams:
    """Flags → :class:`DispatchParams`; ``--params`` (JSON first, then file) overrides all dispatch flags."""
    if args.params:
        return params_from_mapping(parse_json_or_file(args.params, "--params", json_first_always=True) or {})
    raw = values_from_namespace(args, DispatchParams)
    if not raw.get("input"):
        raise DispatchError(f"--input is required (one of {list(INPUT_FORMATS)}) unless --params gives it", "--input")
    if args.concatenate:
        raw["concatenate"] = True
        if raw["split_segments"]:  # the default; an explicit --no-split-segments agrees with --concatenate
            raw.pop("split_segments")
    return params_from_mapping(raw)
