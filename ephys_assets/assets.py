"""The ``ephys_job`` asset: one partition of ``recordings`` = one job JSON, written atomically."""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from ephys_assets.config import DispatchConfig
from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.jobs import job_json_text
from ephys_assets.dispatch.model import Job
from ephys_assets.dispatch.outputs import folder_lock, prune_if_complete, stale_job_files
from ephys_assets.dispatch.watch import detect_input_format
from ephys_assets.partitions import RECORDINGS, recordings_partitions, validate_recording_key
from ephys_assets.plots import probe_layout_png
from ephys_assets.service import (
    job_metadata,
    job_session_key,
    plan_dispatch,
    session_overrides,
    stale_partition_keys,
)
from neuro_pipelines.fsutil import confined_path, write_json_atomic, write_text_atomic
from neuro_pipelines.keys import slugify
from neuro_pipelines.plots import png_markdown
from resources.ephys_paths import EphysPaths

JOB_ASSET = "ephys_job"
LOAD_CHECK = "job_json_loads"
MANIFEST_FILE = "manifest.json"


def sessions_for_key(data_root: Path, partition_key: str, session_tag: str | None) -> list[str]:
    """Which data-root entry a partition key belongs to: the run's ``session`` tag, else the key's slug prefix."""
    if session_tag:
        return [session_tag]
    if data_root.is_dir():
        matches = sorted(
            p.name for p in data_root.iterdir() if partition_key.startswith(f"{slugify(p.name)}__")
        )
        if matches:
            return matches[:1]
    raise DispatchError(f"no session under the data root matches partition key {partition_key!r}", data_root)


def job_output_path(results_root: Path, job: Job, index: int, layout: str) -> Path:
    """``flat``: ``<results>/job_<i>.json`` (capsule layout); ``per_session``: ``<results>/<session>/job_<i>.json``."""
    if layout == "flat":
        return confined_path(results_root, f"job_{index}.json")
    if layout != "per_session":
        raise DispatchError(f"output_layout must be 'flat' or 'per_session', got {layout!r}", "output_layout")
    return confined_path(results_root, slugify(job_session_key(job)) or "session", f"job_{index}.json")


def probe_layout_metadata(recording: Any, title: str) -> dg.MetadataValue | None:
    """The recording's contact layout coloured by channel group, or None when it has no locations."""
    try:
        locations = recording.get_channel_locations()
    except Exception:  # no probe attached (e.g. NWB series without locations never get here, others may)
        return None
    groups = recording.get_property("group")
    return png_markdown(probe_layout_png(locations, groups, title), "Probe layout (colour = group)")


def verify_job_file(path: Path, data_root: Path, job: Job) -> tuple[bool, dict[str, Any], Any]:
    """Reload the written JSON like the downstream capsules do and compare channels, segments and samples.

    Returns (ok, what was found, the reloaded recording).
    """
    import spikeinterface as si

    written = json.loads(path.read_text())
    recording = si.load(written["recording_dict"], base_folder=data_root)
    samples = [recording.get_num_samples(segment_index=k) for k in range(recording.get_num_segments())]
    found = {
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


@dg.asset(
    name=JOB_ASSET,
    partitions_def=recordings_partitions,
    group_name="ephys",
    kinds={"python", "json"},
    check_specs=[
        dg.AssetCheckSpec(
            LOAD_CHECK,
            asset=JOB_ASSET,
            description="The job JSON loads back with spikeinterface.load(base_folder=data)",
        )
    ],
    description="One sorting job (aind-ephys-job-dispatch format) per recording/segment/group of an ephys session.",
)
def ephys_job(
    context: dg.AssetExecutionContext, config: DispatchConfig, ephys_paths: EphysPaths
) -> dg.MaterializeResult:
    data_root = ephys_paths.data_path
    key = validate_recording_key(context.partition_key)
    key_sessions = list(config.sessions) or sessions_for_key(data_root, key, context.run.tags.get("session"))
    # The flat layout is the capsule's: one global job numbering over the whole data root (as the CLI plans it),
    # so several sessions never write the same job_<i>.json. per_session numbers the sessions it dispatches.
    plan_sessions = None if config.output_layout == "flat" and not config.sessions else key_sessions
    overrides: dict[str, Any] = {}
    if config.use_session_params_file and len(key_sessions) == 1:
        overrides = session_overrides(data_root, key_sessions)
    if not config.input and "input" not in overrides:
        detected = detect_input_format(data_root / key_sessions[0])
        if detected is None:
            raise DispatchError(
                "cannot tell the input format of this session; set config 'input'",
                data_root / key_sessions[0],
            )
        overrides["input"] = detected
    params = config.to_params(overrides)
    plan = plan_dispatch(data_root, params, plan_sessions)
    if key not in plan.keys:
        raise dg.Failure(
            f"partition {key!r} is not produced by session(s) {plan_sessions or 'of the data root'} any more; "
            f"current keys: {list(plan.keys)}"
        )
    index = plan.index_of(key)
    job = plan.result.jobs[index]
    out_path = job_output_path(ephys_paths.results_path, job, index, config.output_layout)
    write_text_atomic(out_path, job_json_text(job))

    # Session-level view: every recording this session produced, next to its job files.
    session_key = job_session_key(job)
    session_files = {
        i: job_output_path(ephys_paths.results_path, j, i, config.output_layout).name
        for i, j in enumerate(plan.result.jobs)
        if job_session_key(j) == session_key
    }
    session_rows = [
        {"partition_key": plan.keys[i], "recording_name": plan.result.jobs[i].recording_name, "file": name}
        for i, name in session_files.items()
    ]
    other_entries = [p.name for p in data_root.iterdir()] if data_root.is_dir() else []
    stale_keys = stale_partition_keys(
        context.instance.get_dynamic_partitions(RECORDINGS), [session_key], plan.keys, other_entries
    )
    if stale_keys:
        context.log.warning(
            f"{len(stale_keys)} partition(s) of session {session_key} are no longer produced: {stale_keys}"
        )
    if config.output_layout == "per_session":
        folder = out_path.parent
        expected = {name: job_json_text(plan.result.jobs[i]) for i, name in session_files.items()}
        # Under a lock: the last run of this session to finish sees every file, prunes and writes the manifest.
        with folder_lock(folder):
            pending, removed = prune_if_complete(folder, expected)
            stale_files = [p.name for p in stale_job_files(folder, expected)]
            write_json_atomic(
                folder / MANIFEST_FILE,
                {
                    "session": job.session_name,
                    "jobs": session_rows,
                    "complete": not pending,
                    "pending_files": pending,
                    "stale_files_removed": [p.name for p in removed],
                    "stale_files_left": stale_files,
                    "stale_partition_keys": stale_keys,
                    **plan.result.log.as_dict(),
                },
            )
    else:
        # flat: the results root may be shared; the CLI prunes it once every job of its run succeeded.
        stale_files = [
            p.name for p in stale_job_files(out_path.parent, [f"job_{i}.json" for i in range(len(plan.keys))])
        ]
        removed = []

    ok, found, recording = verify_job_file(out_path, data_root, job)
    layout_plot = probe_layout_metadata(recording, job.recording_name)
    table = "\n".join(
        ["| partition key | recording_name | file |", "|---|---|---|"]
        + [f"| {r['partition_key']} | {r['recording_name']} | {r['file']} |" for r in session_rows]
    )
    meta = job_metadata(job)
    return dg.MaterializeResult(
        metadata={
            **{k: v for k, v in meta.items() if k != "samples_per_segment"},
            "session": dg.MetadataValue.text(str(job.session_name)),
            "segments": meta["segments"],
            "json_path": dg.MetadataValue.path(str(out_path)),
            "job_index": index,
            "session_recordings": dg.MetadataValue.md(table),
            "jobs_in_dispatch": len(plan.keys),
            "params": dg.MetadataValue.json(params.as_dict()),
            "dropped_streams": dg.MetadataValue.json(plan.result.log.dropped_streams),
            "swallowed_errors": len(plan.result.log.swallowed_errors),
            "stale_partition_keys": dg.MetadataValue.json(stale_keys),
            "stale_job_files_removed": dg.MetadataValue.json([p.name for p in removed]),
            "stale_job_files_left": dg.MetadataValue.json(stale_files),
            **({"probe_layout": layout_plot} if layout_plot is not None else {}),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=LOAD_CHECK, passed=ok, metadata={"loaded": dg.MetadataValue.json(found)}
            )
        ],
    )
