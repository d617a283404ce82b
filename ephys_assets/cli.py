"""``ephys-dispatch``: drop-in for the capsule's ``code/run``, as runs of the named job ``ephys_dispatch_job``.

Everything is discovered and validated before anything is written; then the results folder is locked, its
manifest says "incomplete", every job becomes one run of its ``recordings`` partition (in worker processes that
execute several runs each), and once all succeeded the stale job files of an earlier dispatch are removed and
the manifest says "complete". The files are ``RESULTS/job_<i>.json`` exactly as the capsule writes them.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.params import DispatchParams, build_arg_parser, params_from_namespace
from neuro_core.files import NotWritableError, check_writable_dir

PROG = "ephys-dispatch"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
logger = logging.getLogger("ephys_assets.cli")


def setup_logging(input_format: str, data_dir: Path) -> None:
    """The capsule's logging: ``aind_log_utils`` for AIND input when it is installed, else our own messages
    (and only ours: no database or library chatter) at INFO on stdout."""
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
    ours = logging.getLogger("ephys_assets")
    if not ours.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    ours.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        params = params_from_namespace(args)
        data_dir = Path(args.data_dir).absolute()
        results_dir = Path(args.results_dir).absolute()
        setup_logging(params.input, data_dir)
        if not data_dir.is_dir():
            raise DispatchError("data folder does not exist or is not a directory", data_dir)
        check_writable_dir(results_dir, "results folder")
        for key, value in params.as_dict().items():
            logger.info("%s: %s", key.upper().replace("_", " "), value)
        from ephys_assets.dispatch.plan import plan_dispatch

        plan = plan_dispatch(data_dir, params)  # discovers and validates everything; writes nothing
    except (DispatchError, NotWritableError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run(params, data_dir, results_dir, plan, force=args.force, verbose=args.verbose)


def _run(params: DispatchParams, data_dir: Path, results_dir: Path, plan: Any, *, force: bool, verbose: bool) -> int:
    import dagster as dg

    from ephys_assets.dispatch.outputs import (
        folder_lock,
        job_file_name,
        read_manifest,
        remove_stale_job_files,
        write_manifest,
    )
    from ephys_assets.dispatch.plan import job_session_key, stale_partition_keys
    from ephys_assets.dispatch.sessions import data_root_entries
    from ephys_assets.dispatch.watch import session_state
    from ephys_assets.jobs import DISPATCH_JOB
    from ephys_assets.partitions import RECORDINGS
    from neuro_core.files import remove_stale_temp_files
    from neuro_core.locks import LockBusyError
    from neuro_core.params import params_dict
    from neuro_core.progress import Progress
    from neuro_pipelines.instance import ensure_instance
    from neuro_pipelines.runs import RunSpec, run_jobs

    jobs = plan.result.jobs
    sessions = {s: session_state(data_dir / s).fingerprint for s in sorted({job_session_key(j) for j in jobs})}
    manifest = {
        "layout": "flat",
        "complete": False,
        "sessions": sessions,
        "params": params.as_dict(),
        "jobs": [
            {"partition_key": k, "recording_name": j.recording_name, "file": job_file_name(i)}
            for i, (k, j) in enumerate(zip(plan.keys, jobs, strict=True))
        ],
    }
    previous = read_manifest(results_dir) or {}
    if not force and previous.get("complete") and all(previous.get(k) == manifest[k] for k in ("sessions", "params", "jobs")):
        print(f"{PROG}: these sessions are unchanged since their complete dispatch into {results_dir}; nothing to "
              "do (--force to write the job files again)")
        return EXIT_OK
    home = ensure_instance()
    config = {**params_dict(params), "sessions": [], "output_layout": "flat", "use_session_params_file": False}
    resources = {"ephys_paths": {"config": {"data_root": str(data_dir), "results_root": str(results_dir)}}}
    specs = [
        RunSpec(
            DISPATCH_JOB,
            label=job_file_name(i),
            run_config={"ops": {"ephys_job": {"config": config}}, "resources": resources},
            tags={"session": job_session_key(job)},
            partition_key=key,
        )
        for i, (key, job) in enumerate(zip(plan.keys, jobs, strict=True))
    ]
    progress = Progress(len(specs), unit="job files")

    def on_done(outcome: Any) -> None:
        progress.finished(outcome.success)
        job = jobs[plan.index_of(outcome.spec.partition_key)]
        detail = f"{job.recording_name}  {job.num_channels} ch  {job.duration} s" if outcome.success else outcome.error
        print(f"  {'✓' if outcome.success else '✗'} {outcome.spec.label}  {detail}   [{progress.line()}]", flush=True)

    try:
        with folder_lock(results_dir, f"{PROG} of {data_dir}", wait=False), dg.DagsterInstance.get() as instance:
            remove_stale_temp_files(results_dir)
            write_manifest(results_dir, manifest)  # "incomplete" before the first job file is written
            instance.add_dynamic_partitions(RECORDINGS, [k for k in plan.keys if not instance.has_dynamic_partition(RECORDINGS, k)])
            workers = min(2, len(specs))
            outcomes = run_jobs(
                instance,
                specs,
                launched_by=PROG,
                log_dir=home / "logs",
                workers=workers,
                runs_per_worker=math.ceil(len(specs) / workers),
                on_line=(lambda spec, text: print(f"  [{spec.label}] {text}")) if verbose else lambda spec, text: None,
                on_done=on_done,
            )
            failures = [o.spec.partition_key for o in outcomes if not o.success]
            removed = [] if failures else remove_stale_job_files(results_dir, [job_file_name(i) for i in range(len(jobs))])
            stale_keys = stale_partition_keys(
                instance.get_dynamic_partitions(RECORDINGS),
                list(sessions),
                plan.keys,
                [p.name for p in data_root_entries(data_dir)],
            )
            write_manifest(
                results_dir,
                {
                    **manifest,
                    "complete": not failures,
                    "failed_partition_keys": failures,
                    "stale_files_removed": [p.name for p in removed],
                    "stale_partition_keys": stale_keys,
                    **plan.result.log.as_dict(),
                },
            )
    except LockBusyError as exc:
        print(f"{PROG}: error: the results folder is being written by another dispatch ({exc}); wait for it "
              "or choose another --results-dir", file=sys.stderr)
        return EXIT_USAGE
    _print_summary(plan, results_dir, failures, removed, stale_keys)
    return EXIT_FAILED if failures else EXIT_OK


def _print_summary(plan: Any, results_dir: Path, failures: list[str], removed: list[Path], stale_keys: list[str]) -> None:
    log = plan.result.log
    n = len(plan.keys)
    print(f"\n{PROG}: {n - len(failures)}/{n} job files written to {results_dir}")
    for index, job in enumerate(plan.result.jobs):
        lfp = " +LFP" if job.recording_lfp_dict is not None else ""
        flag = " skip_times" if job.skip_times else ""
        print(f"  job_{index}.json  {job.recording_name}  {job.num_channels} ch  {job.duration} s{lfp}{flag}")
    print(
        f"  dropped streams: {len(log.dropped_streams)}, skipped recordings: {len(log.skipped_recordings)}, "
        f"timestamp resets: {len(log.timestamp_resets)}, swallowed errors: {len(log.swallowed_errors)}"
    )
    for warning in log.warnings:
        print(f"  WARNING: {warning}")
    if removed:
        print(f"  removed stale job files of an earlier dispatch: {[p.name for p in removed]}")
    if stale_keys:
        print(f"  partitions no longer produced by these sessions (kept; delete with "
              f"`neuro-partitions delete recordings ...`): {stale_keys}")
    if failures:
        print(f"{PROG}: error: {len(failures)} job(s) failed: {failures}; the dispatch is marked incomplete in "
              f"{results_dir / 'manifest.json'}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
