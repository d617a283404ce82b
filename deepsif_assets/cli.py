"""``deepsif-generate``: the orchestrator's command line, run through Dagster (one run per region).

    deepsif-generate --start_region 0 --end_region 10 [--filename spikes] [--leadfield leadfield_75_20k.mat]

For each region in [start, end): skip it if its ``nmm_spikes`` partition is materialized and its clips and markers
are intact (resume); otherwise materialize ``raw_nmm`` → ``nmm_spikes`` (or only ``nmm_spikes`` when complete raw
data or complete clips are already on disk) in a child process, ``--workers`` regions at a time. A failing region
never stops the others. Then, unless ``--no-synthetic-source``, materialize ``synthetic_source`` over the regions
done so far, print the orchestrator's summary, and exit 1 if any region failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deepsif_assets.partitions import N_FS_REGIONS, REGIONS, region_keys
from deepsif_assets.region_runner import RESULT_PREFIX, root_message
from deepsif_assets.regions import ExtractionState, RegionLayout, extraction_status, raw_is_complete
from resources.deepsif_paths import DEFAULT_ANATOMY_DIR, DEFAULT_SOURCE_DIR

BANNER = "=" * 80
_OCTAVE_EXIT_NOISE = "ignoring const execution_exception& while preparing to exit"
_print_lock = threading.Lock()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepsif-generate", description="DeepSIF training data per region: simulation → clips → cleanup."
    )
    p.add_argument("--start_region", type=int, required=True, help="first region (inclusive, ≥ 0)")
    p.add_argument("--end_region", type=int, required=True, help="last region (exclusive)")
    p.add_argument("--filename", default="spikes", help="clips go to <source>/nmm_<filename>/")
    p.add_argument(
        "--leadfield", default="leadfield_75_20k.mat", help="lead field file in the anatomy folder"
    )
    p.add_argument("--anatomy-dir", default=str(DEFAULT_ANATOMY_DIR), help="anatomy folder")
    p.add_argument(
        "--source-dir", default=str(DEFAULT_SOURCE_DIR), help="output root (raw_nmm/, nmm_<filename>/)"
    )
    p.add_argument("--engine", choices=("fast", "tvb"), default="fast")
    p.add_argument("--raw-format", choices=("original", "compact"), default="compact")
    p.add_argument("--keep-raw", action="store_true", help="keep raw_nmm/a{r} after extraction")
    p.add_argument("--dt", type=float, default=0.5, help="integration step (ms)")
    p.add_argument("--segments", type=int, default=20, help="segments per iteration")
    p.add_argument("--segment-ms", type=float, default=10_000.0, help="simulated ms per segment")
    p.add_argument("--iterations", type=int, nargs="+", default=[0, 1, 2], help="noise settings to simulate")
    p.add_argument("--workers", type=int, default=1, help="regions processed in parallel (one process each)")
    p.add_argument(
        "--no-synthetic-source", action="store_true", help="skip the synthetic_source step at the end"
    )
    p.add_argument("--mode", choices=("train", "test"), default="train", help="synthetic_source mode")
    p.add_argument("--n-sources", type=int, default=2, help="synthetic_source: source patches per sample")
    p.add_argument("--seed", type=int, default=0, help="synthetic_source: random seed")
    return p


def say(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def region_plan(instance: Any, layout: RegionLayout, iterations: list[int]) -> list[str]:
    """Which assets a region still needs: [] (done and intact), ["nmm_spikes"], or both."""
    import dagster as dg

    status = extraction_status(layout, iterations)
    key = str(layout.region)
    spikes_done = key in instance.get_materialized_partitions(dg.AssetKey("nmm_spikes"))
    if spikes_done and status.state is ExtractionState.COMPLETE:
        return []
    if status.state is ExtractionState.COMPLETE or raw_is_complete(layout):
        return ["nmm_spikes"]  # adopt complete clips, or extract from complete raw data
    return ["raw_nmm", "nmm_spikes"]


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """One region in a child process; its output is echoed with a region prefix."""
    region = spec["region"]
    say(f"[region {region}] start: {' → '.join(spec['assets'])}")
    started = time.perf_counter()
    command = [sys.executable, "-m", "deepsif_assets.region_runner", json.dumps(spec)]
    outcome: dict[str, Any] | None = None
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=os.environ.copy()
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(RESULT_PREFIX):
                outcome = json.loads(line[len(RESULT_PREFIX) :])
            elif line.strip() and _OCTAVE_EXIT_NOISE not in line:
                say(f"[region {region}] {line}")
        proc.wait()
    if outcome is None:
        outcome = {
            "region": region,
            "success": False,
            "error": f"worker process exited with status {proc.returncode}",
        }
    outcome["seconds"] = round(time.perf_counter() - started, 2)
    mark = "✓" if outcome["success"] else "✗"
    detail = f"{outcome.get('total_clips', '?')} clips" if outcome["success"] else outcome.get("error")
    say(
        f"[region {region}] {mark} {'completed' if outcome['success'] else 'FAILED'} in {outcome['seconds']:.2f} s: {detail}"
    )
    return outcome


def materialize_synthetic(args: argparse.Namespace) -> tuple[bool, str]:
    """The orchestrator's step 4, through the ``synthetic_source`` asset (lazy import: optional module)."""
    import dagster as dg

    from deepsif_assets.synthetic.assets import synthetic_source
    from deepsif_assets.synthetic.config import SyntheticSourceConfig
    from resources.deepsif_paths import DeepsifPaths
    from resources.octave import OctaveResource

    config = SyntheticSourceConfig(
        mode=args.mode,
        n_sources=args.n_sources,
        seed=args.seed,
        filename=args.filename,
        leadfield=args.leadfield,
    )
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [synthetic_source],
            instance=instance,
            resources={
                "deepsif_paths": DeepsifPaths(anatomy_dir=args.anatomy_dir, source_dir=args.source_dir),
                "octave": OctaveResource(),
            },
            run_config=dg.RunConfig(
                ops={"synthetic_source": config}, loggers={"console": {"config": {"log_level": "INFO"}}}
            ),
            raise_on_error=False,
        )
    if result.success:
        return True, "synthetic_source materialized"
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return False, "synthetic_source failed: " + "; ".join(
        root_message(e.step_failure_data.error) for e in failures
    )


def validate_args(args: argparse.Namespace) -> list[str]:
    """Errors that stop the whole run before anything starts (as the orchestrator's validation)."""
    if args.start_region < 0:
        return ["start_region must be >= 0"]
    if args.end_region <= args.start_region:
        return ["end_region must be > start_region"]
    if args.end_region > N_FS_REGIONS:
        return [f"end_region must be <= {N_FS_REGIONS} (regions are 0..{N_FS_REGIONS - 1})"]
    if args.workers < 1:
        return ["--workers must be >= 1"]
    anatomy = Path(args.anatomy_dir)
    missing = [name for name in (args.leadfield, "connectivity_998.zip") if not (anatomy / name).is_file()]
    return [f"anatomy file {anatomy / name} is missing" for name in missing]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    errors = validate_args(args)
    if errors:
        for error in errors:
            print(f"Error: {error}", file=sys.stderr)
        return 1
    import dagster as dg

    from neuro_pipelines.instance_setup import ensure_instance

    args.anatomy_dir = str(Path(args.anatomy_dir).absolute())
    args.source_dir = str(Path(args.source_dir).absolute())
    keys = region_keys(args.start_region, args.end_region)
    home = ensure_instance()
    raw_config = {
        "dt": args.dt,
        "n_segments": args.segments,
        "segment_ms": args.segment_ms,
        "iterations": args.iterations,
        "engine": args.engine,
        "raw_format": args.raw_format,
    }
    spikes_config = {
        "filename": args.filename,
        "leadfield_name": args.leadfield,
        "iterations": args.iterations,
        "keep_raw": args.keep_raw,
    }
    print(BANNER)
    print("DeepSIF data generation (Dagster)")
    print(
        f"  regions: {args.start_region} … {args.end_region - 1} ({len(keys)}), filename: {args.filename}, "
        f"lead field: {args.leadfield}"
    )
    print(f"  source: {args.source_dir}   anatomy: {args.anatomy_dir}   DAGSTER_HOME: {home}")
    print(
        f"  dt {args.dt} ms, {args.segments} × {args.segment_ms:g} ms, iterations {args.iterations}, "
        f"engine {args.engine}, raw format {args.raw_format}, workers {args.workers}"
    )
    print(BANNER, flush=True)

    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(REGIONS, keys)
        plans = {
            int(k): region_plan(
                instance, RegionLayout(Path(args.source_dir), int(k), args.filename), args.iterations
            )
            for k in keys
        }
    skipped = [r for r, assets in plans.items() if not assets]
    for region in skipped:
        say(f"[region {region}] already materialized with intact clips: skipped")
    specs = [
        {
            "region": region,
            "assets": assets,
            "anatomy_dir": args.anatomy_dir,
            "source_dir": args.source_dir,
            "raw_nmm": raw_config,
            "nmm_spikes": spikes_config,
        }
        for region, assets in plans.items()
        if assets
    ]
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        outcomes = list(pool.map(run_child, specs))

    succeeded = sorted([o["region"] for o in outcomes if o["success"]] + skipped)
    failed = sorted(o["region"] for o in outcomes if not o["success"])
    synthetic_ok = True
    if not args.no_synthetic_source:
        print(BANNER)
        if succeeded:
            print("STEP 4: synthetic_source over the regions materialized so far", flush=True)
            try:
                synthetic_ok, message = materialize_synthetic(args)
            except Exception as exc:  # the region results are still reported
                synthetic_ok, message = False, f"{type(exc).__name__}: {exc}"
            print(("✓ " if synthetic_ok else "✗ ") + message)
        else:
            print("No region succeeded: synthetic_source skipped")

    total = time.perf_counter() - started
    print(BANNER)
    print("SUMMARY")
    print(BANNER)
    print(f"Total time: {total:.2f} seconds ({total / 60:.2f} minutes)")
    print(f"Successful regions: {len(succeeded)}/{len(keys)} {succeeded}")
    print(f"Failed regions: {len(failed)} {failed}")
    for o in outcomes:
        state = "ok" if o["success"] else f"FAILED ({o.get('error')})"
        print(f"  region {o['region']}: {o['seconds']:.2f} s {state}")
    for region in skipped:
        print(f"  region {region}: skipped (already done)")
    print(BANNER, flush=True)
    return 0 if not failed and synthetic_ok else 1


if __name__ == "__main__":
    sys.exit(main())
