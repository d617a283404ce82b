"""The ``ephys_job`` asset: one partition of ``recordings`` = one job JSON, written atomically, reloaded, checked."""

import dagster as dg

from ephys_assets import metadata
from ephys_assets.config import DispatchConfig
from ephys_assets.dispatch.jobs import job_json_text
from ephys_assets.dispatch.outputs import update_session_folder
from ephys_assets.dispatch.plan import (
    job_output_path,
    job_session_key,
    plan_dispatch,
    resolve_params,
    sessions_for_key,
    stale_partition_keys,
)
from ephys_assets.dispatch.sessions import data_root_entries
from ephys_assets.dispatch.verify import verify_job_file
from ephys_assets.dispatch.watch import session_state
from ephys_assets.partitions import RECORDINGS, recordings_partitions
from neuro_core.files import write_text_atomic
from neuro_core.keys import validate_key
from neuro_pipelines.instance import claim_run
from resources.ephys_paths import EphysPaths

JOB_ASSET = "ephys_job"
LOAD_CHECK = "job_json_loads"


@dg.asset(
    name=JOB_ASSET,
    partitions_def=recordings_partitions,
    group_name="ephys",
    kinds={"python", "json"},
    check_specs=[
        dg.AssetCheckSpec(
            LOAD_CHECK,
            asset=JOB_ASSET,
            description="The job JSON loads back with spikeinterface.load(base_folder=data) with the expected "
            "channels, segments and samples",
        )
    ],
    description="One spike-sorting job (aind-ephys-job-dispatch format) per recording, segment and channel group "
    "of an ephys session.",
)
def ephys_job(
    context: dg.AssetExecutionContext, config: DispatchConfig, ephys_paths: EphysPaths
) -> dg.MaterializeResult:
    claim_run(context)
    data_root, results_root = ephys_paths.data_path, ephys_paths.results_path
    key = validate_key(context.partition_key, RECORDINGS)
    sessions = list(config.sessions) or sessions_for_key(data_root, key, context.run.tags.get("session"))
    params = resolve_params(data_root, sessions[0], config.param_values(), config.use_session_params_file)
    # The flat layout is the capsule's: one job numbering over the whole data root (as the CLI plans it).
    plan = plan_dispatch(data_root, params, None if config.output_layout == "flat" else sessions)
    if key not in plan.keys:
        raise dg.Failure(
            f"partition {key!r} is no longer produced by session(s) {sessions}; current keys: {list(plan.keys)}"
        )
    index = plan.index_of(key)
    job = plan.result.jobs[index]
    out_path = job_output_path(results_root, job, index, config.output_layout)
    write_text_atomic(out_path, job_json_text(job))

    session = job_session_key(job)
    stale_keys = stale_partition_keys(
        context.instance.get_dynamic_partitions(RECORDINGS),
        [session],
        plan.keys,
        [p.name for p in data_root_entries(data_root)],
    )
    if stale_keys:
        context.log.warning(f"{len(stale_keys)} partition(s) of session {session} are no longer produced: {stale_keys}")
    folder_state = None
    if config.output_layout == "per_session":
        folder_state = update_session_folder(
            out_path.parent,
            session,
            session_state(data_root / session).fingerprint,
            {i: (plan.keys[i], plan.result.jobs[i]) for i in plan.session_indices(session)},
            params.as_dict(),
            plan.result.log.as_dict(),
            stale_keys,
        )
    ok, found, recording = verify_job_file(out_path, data_root, job)
    return dg.MaterializeResult(
        metadata=metadata.job_metadata(job, index, out_path, plan, params, stale_keys, folder_state, recording),
        check_results=[
            dg.AssetCheckResult(check_name=LOAD_CHECK, passed=ok, metadata={"loaded": dg.MetadataValue.json(found)})
        ],
    )

