"""``ephys-dispatch``: drop-in for the capsule's ``code/run``, executed through the Dagster ``ephys_job`` asset.

Every job becomes one materialization of a ``recordings`` partition in the project's persistent instance, so the
UI shows what the command did; the files are ``RESULTS/job_<i>.json`` exactly as the original writes them.
"""

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.params import build_arg_parser, params_from_namespace

logger = logging.getLogger("ephys_assets.cli")
DISPATCH_LOGGER = "ephys_assets.dispatch"


@contextlib.contextmanager
def quiet_dispatch_logs() -> Iterator[None]:
    """The CLI already printed the discovery log of its plan; materializations must not print it again."""
    dispatch_logger = logging.getLogger(DISPATCH_LOGGER)
    previous = dispatch_logger.level
    dispatch_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        dispatch_logger.setLevel(previous)


def setup_logging(input_format: str, data_dir: Path) -> None:
    """The capsule's logging: ``aind_log_utils`` for AIND input when it is installed, else INFO to stdout."""
    if input_format == "aind" and data_dir.is_dir():
        try:
            from aind_log_utils import log as aind_log
        except ImportError:
            aind_log = None
        if aind_log is not None:
            from ephys_assets.dispatch.aind import aind_logging_identity

            subject_id, asset_name = aind_logging_identity(data_dir)
            aind_log.setup_logging("Job Dispatch Ecephys", subject_id=subject_id, asset_name=asset_name)
            return
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = build_arg_parser()
    args = parser.parse_args(argv)
    try:
        params = params_from_namespace(args)
        data_dir = Path(args.data_dir or "../data")
        results_dir = Path(args.results_dir or "../results")
        setup_logging(params.input, data_dir)
        if not data_dir.is_dir():
            raise DispatchError("data folder does not exist or is not a directory", data_dir)
        return _run(params, data_dir, results_dir)
    except DispatchError as exc:
        print(f"ephys-dispatch: error: {exc}", file=sys.stderr)
        return 2


def _run(params, data_dir: Path, results_dir: Path) -> int:
    import dagster as dg

    from ephys_assets.assets import JOB_ASSET, ephys_job
    from ephys_assets.config import config_from_params
    from ephys_assets.dispatch.outputs import job_file_name, remove_stale_job_files
    from ephys_assets.partitions import RECORDINGS
    from ephys_assets.service import job_session_key, plan_dispatch, stale_partition_keys
    from neuro_pipelines.instance import ensure_instance
    from resources.ephys_paths import EphysPaths

    for key, value in params.as_dict().items():
        logger.info("%s: %s", key.upper().replace("_", " "), value)
    # Everything is discovered (and validated) before the first file is written: bad input leaves nothing behind.
    plan = plan_dispatch(data_dir, params)
    ensure_instance()
    resources = {
        "ephys_paths": EphysPaths(
            data_root=str(data_dir.absolute()), results_root=str(results_dir.absolute())
        )
    }
    with dg.DagsterInstance.get() as instance, quiet_dispatch_logs():
        instance.add_dynamic_partitions(
            RECORDINGS, [k for k in plan.keys if not instance.has_dynamic_partition(RECORDINGS, k)]
        )
        failures = []
        for key, job in zip(plan.keys, plan.result.jobs, strict=True):
            run_config = {
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                "ops": {
                    JOB_ASSET: {
                        "config": config_from_params(
                            params, sessions=[], output_layout="flat", use_session_params_file=False
                        )
                    }
                },
            }
            result = dg.materialize(
                [ephys_job],
                instance=instance,
                partition_key=key,
                resources=resources,
                run_config=run_config,
                tags={"session": job_session_key(job), "ephys/entry_point": "ephys-dispatch"},
                raise_on_error=False,
            )
            if not result.success:
                failures.append(key)
        session_keys = sorted({job_session_key(job) for job in plan.result.jobs})
        entries = [p.name for p in data_dir.iterdir()]
        stale_keys = stale_partition_keys(
            instance.get_dynamic_partitions(RECORDINGS), session_keys, plan.keys, entries
        )
    # Only a complete run replaces the previous dispatch: job files it no longer produces are removed (flat layout).
    removed = (
        []
        if failures
        else remove_stale_job_files(results_dir, [job_file_name(i) for i in range(len(plan.keys))])
    )
    log = plan.result.log
    print(
        f"\nephys-dispatch: {len(plan.keys) - len(failures)}/{len(plan.keys)} job files written to {results_dir}"
    )
    for index, job in enumerate(plan.result.jobs):
        lfp = " +LFP" if job.recording_lfp_dict is not None else ""
        flag = " skip_times" if job.skip_times else ""
        print(f"  job_{index}.json  {job.recording_name}  {job.num_channels} ch  {job.duration} s{lfp}{flag}")
    print(
        f"  dropped streams: {len(log.dropped_streams)}, skipped recordings: {len(log.skipped_recordings)}, "
        f"timestamp resets: {len(log.timestamp_resets)}, swallowed errors: {len(log.swallowed_errors)}"
    )
    if removed:
        print(f"  removed stale job files of an earlier dispatch: {[p.name for p in removed]}")
    if stale_keys:
        print(
            f"  partitions no longer produced by these sessions (kept; delete with "
            f"`neuro-partitions delete {RECORDINGS} ...`): {stale_keys}"
        )
    if failures:
        print(
            f"ephys-dispatch: error: {len(failures)} materialization(s) failed: {failures}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
