"""``deepsif-generate``: the orchestrator's command line, as runs of the code location's named jobs.

For each region in [start, end): skip it if it is done with exactly this configuration (resume); otherwise run
``deepsif_region_job``: the regions to simulate in batches (``raw_nmm`` over a range of partitions, ``--batch``
regions per run), then ``nmm_spikes`` per region (alone when complete raw data or clips of this configuration are
on disk); ``--workers`` runs at a time, each in its own process. A failing region never stops the others. Then
``deepsif_synthetic_job`` over the regions done so far. Everything is validated before the first run is launched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deepsif_assets.params import REGIONS_PER_BATCH, ExtractionParams, SimulationOptions, SyntheticParams
from deepsif_assets.simulation.params import N_FS_REGIONS, SimulationParams
from neuro_core.params import ParamError, add_param_arguments, values_from_namespace
from neuro_core.progress import Progress, ProgressReporter, format_duration
from resources.deepsif_paths import DEFAULT_ANATOMY_DIR, DEFAULT_SOURCE_DIR

PROG = "deepsif-generate"
CORES = os.cpu_count() or 1
BANNER = "=" * 80
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SYNTHETIC_DEST = "synthetic_"
EPILOG = """\
examples:
  deepsif-generate --start_region 0 --end_region 994                       # the whole training set
  deepsif-generate --start-region 0 --end-region 10 --workers 2 --mode test
  deepsif-generate --start_region 0 --end_region 4 --dt 1 --segments 10 --segment-ms 5000   # BrainForge

exit codes:
  0  every region (and the synthetic source) done
  1  some region or the synthetic source failed (the others are done; re-run to retry)
  2  bad input or usage: nothing launched, nothing written
"""


class UsageError(ValueError):
    """Bad input found before anything was launched."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="DeepSIF training data per region (TVB simulation → spike clips → raw clean-up), then the "
        "synthetic source, as runs of the Dagster jobs deepsif_region_job and deepsif_synthetic_job.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    regions = parser.add_argument_group("regions (cortical fs region ids, end exclusive as the original)")
    regions.add_argument("--start_region", "--start-region", type=int, required=True, help="first region (≥ 0)")
    regions.add_argument(
        "--end_region", "--end-region", type=int, required=True, help=f"last region + 1 (≤ {N_FS_REGIONS})"
    )
    folders = parser.add_argument_group("folders")
    folders.add_argument("--anatomy-dir", default=str(DEFAULT_ANATOMY_DIR), help="anatomy folder [default: bundled]")
    folders.add_argument(
        "--source-dir", default=str(DEFAULT_SOURCE_DIR), help=f"output root [default: {DEFAULT_SOURCE_DIR}]"
    )
    simulation = parser.add_argument_group("simulation (defaults: the original configuration)")
    add_param_arguments(simulation, SimulationParams)
    add_param_arguments(simulation, SimulationOptions)
    extraction = parser.add_argument_group("clip extraction")
    add_param_arguments(extraction, ExtractionParams)
    synthetic = parser.add_argument_group("synthetic source")
    synthetic.add_argument(
        "--synthetic-source",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="build the synthetic source over the regions done [default: on]",
    )
    add_param_arguments(synthetic, SyntheticParams, dest_prefix=SYNTHETIC_DEST)
    running = parser.add_argument_group("running")
    running.add_argument(
        "--workers", type=int, default=CORES, help=f"worker processes at once [default: the cores, {CORES}]"
    )
    running.add_argument(
        "--batch",
        type=int,
        default=None,
        help="regions simulated together in one run (its lanes; ≈ 0.36 GB memory per region) "
        f"[default: {REGIONS_PER_BATCH}, fewer if the memory of --workers runs does not allow it]",
    )
    running.add_argument(
        "--max-regions-in-flight",
        type=int,
        default=None,
        help="regions whose raw data may be on disk at once (≈ 1.3 GB each) [default: (workers + 1) × batch]",
    )
    running.add_argument(
        "--rerun-changed",
        action="store_true",
        help="re-simulate regions whose clips were made with another configuration (default: stop and list them)",
    )
    running.add_argument("-v", "--verbose", action="store_true", help="print every log line of the runs")
    return parser


@dataclass(frozen=True)
class Request:
    """A validated command line."""

    regions: list[int]
    anatomy_dir: Path
    source_dir: Path
    simulation: SimulationParams
    options: SimulationOptions
    extraction: ExtractionParams
    synthetic: SyntheticParams | None
    workers: int
    batch: int | None  # regions per simulation run; None: planned with the memory (see with_batch_size)
    max_in_flight: int | None  # None: (workers + 1) × batch
    rerun_changed: bool
    verbose: bool

    def regions_in_flight(self, batch: int) -> int:
        """The cap on regions whose raw data may be on disk at once, with ``batch`` regions per simulation run."""
        return self.max_in_flight or (self.workers + 1) * batch


def parse_request(args: argparse.Namespace) -> Request:
    """Build every parameter set from the flags; a :class:`UsageError` names the first bad value."""
    if not 0 <= args.start_region < args.end_region <= N_FS_REGIONS:
        raise UsageError(
            f"--start_region {args.start_region} / --end_region {args.end_region}: expected "
            f"0 ≤ start < end ≤ {N_FS_REGIONS} (end exclusive)"
        )
    for flag, value in (("--workers", args.workers), ("--batch", args.batch), ("--max-regions-in-flight", args.max_regions_in_flight)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: expected ≥ 1")
    try:
        simulation = SimulationParams(**values_from_namespace(args, SimulationParams))
        # `iterations` is one flag (of the simulation) that the extraction shares by name
        extraction = ExtractionParams(**values_from_namespace(args, ExtractionParams))
        synthetic = SyntheticParams(
            **values_from_namespace(args, SyntheticParams, SYNTHETIC_DEST),
            filename=extraction.filename,
            leadfield=extraction.leadfield_name,
        )
        options = SimulationOptions(**values_from_namespace(args, SimulationOptions))
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    return Request(
        regions=list(range(args.start_region, args.end_region)),
        anatomy_dir=Path(args.anatomy_dir).absolute(),
        source_dir=Path(args.source_dir).absolute(),
        simulation=simulation,
        options=options,
        extraction=extraction,
        synthetic=synthetic if args.synthetic_source else None,
        workers=args.workers,
        batch=args.batch,
        max_in_flight=args.max_regions_in_flight,
        rerun_changed=args.rerun_changed,
        verbose=args.verbose,
    )


def validate(request: Request) -> dict[str, Any]:
    """Everything checked before a run is launched; returns the requested region configuration."""
    from deepsif_assets.fingerprint import region_configuration, simulation_configuration
    from deepsif_assets.validation import validate_generation
    from resources.octave import OctaveResource

    problems = validate_generation(
        request.anatomy_dir,
        request.source_dir,
        request.simulation,
        request.options,
        request.extraction,
        request.synthetic,
        min(request.regions_in_flight(request.batch or REGIONS_PER_BATCH), len(request.regions)),
        OctaveResource().check,
    )
    if problems:
        raise UsageError("\n".join(problems))
    anatomy = request.anatomy_dir
    return region_configuration(
        simulation_configuration(request.simulation, request.options, anatomy / request.options.connectivity_file),
        request.extraction,
        anatomy / request.extraction.leadfield_name,
    )


def plan_regions(request: Request, instance: Any, requested: dict[str, Any]) -> dict[int, Any]:
    """Each region's action; conflicts stop the command unless ``--rerun-changed``."""
    import dagster as dg

    from deepsif_assets.layout import RegionLayout
    from deepsif_assets.resume import plan_region

    done = instance.get_materialized_partitions(dg.AssetKey("nmm_spikes"))
    plans = {
        r: plan_region(
            RegionLayout(request.source_dir, r, request.extraction.filename),
            request.simulation.iterations,
            str(r) in done,
            requested,
        )
        for r in request.regions
    }
    conflicts = {r: p.conflicts for r, p in plans.items() if p.conflicts}
    if conflicts and not request.rerun_changed:
        first = next(iter(conflicts.values()))
        raise UsageError(
            f"{len(conflicts)} region(s) {sorted(conflicts)[:20]} already have clips made with another "
            f"configuration in {request.source_dir}; differences (first region): "
            + "; ".join(first[:8])
            + ". Re-run them with --rerun-changed, or choose a new --source-dir."
        )
    return plans


def with_batch_size(request: Request, n_to_simulate: int) -> Request:
    """``request`` with its simulation batch size and regions in flight fixed: ``--batch``, or the largest batch
    ≤ REGIONS_PER_BATCH whose runs fit in the available memory (the tvb engine holds one lane at a time)."""
    from deepsif_assets.validation import available_memory_bytes, memory_bytes_per_region, regions_per_batch

    requested = None if request.batch is None else min(request.batch, max(n_to_simulate, 1))
    if request.options.engine == "tvb":
        batch = requested or REGIONS_PER_BATCH
    else:
        try:
            batch = regions_per_batch(
                requested,
                REGIONS_PER_BATCH,
                request.workers,
                n_to_simulate,
                memory_bytes_per_region(request.simulation, request.options),
                available_memory_bytes(),
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return replace(request, batch=batch, max_in_flight=request.regions_in_flight(batch))


def _resources(request: Request) -> dict[str, Any]:
    paths = {"anatomy_dir": str(request.anatomy_dir), "source_dir": str(request.source_dir)}
    return {"deepsif_paths": {"config": paths}}


def region_run_config(request: Request, action: Any, threads: int = 1) -> dict[str, Any]:
    """Run config of a region run: the simulation's (``Action.SIMULATE``) or the extraction's."""
    from deepsif_assets.resume import Action
    from neuro_core.params import params_dict

    if action is Action.SIMULATE:
        config = {**params_dict(request.simulation), **params_dict(request.options), "threads": threads}
        ops = {"raw_nmm": {"config": config}}
    else:
        ops = {"nmm_spikes": {"config": params_dict(request.extraction)}}
    return {"ops": ops, "resources": _resources(request)}


def synthetic_run_config(request: Request, fingerprint: str) -> dict[str, Any]:
    from neuro_core.params import params_dict

    config = {**params_dict(request.synthetic), "fingerprint": fingerprint}
    return {"ops": {"synthetic_source": {"config": config}}, "resources": _resources(request)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        request = parse_request(args)
        _remove_killed_raw_writes(request)
        requested = validate(request)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run(request, requested)


def _remove_killed_raw_writes(request: Request) -> None:
    """Half-written raw files that killed simulations left in the requested regions, before the free-space check."""
    from deepsif_assets.extraction import remove_killed_raw_writes
    from deepsif_assets.layout import RegionLayout

    removed = []
    for region in request.regions:
        with contextlib.suppress(OSError):  # an unwritable source folder is validate()'s error to report
            removed += remove_killed_raw_writes(RegionLayout(request.source_dir, region))
    if removed:
        _say(f"removed {len(removed)} half-written raw file(s) of killed simulations")


def _say(text: str) -> None:
    print(text, flush=True)


def _run(request: Request, requested: dict[str, Any]) -> int:
    import dagster as dg

    from deepsif_assets.partitions import REGIONS
    from deepsif_assets.resume import Action
    from neuro_pipelines.instance import ensure_instance

    home = ensure_instance()
    with dg.DagsterInstance.get() as instance:
        try:
            plans = plan_regions(request, instance, requested)
            request = with_batch_size(request, sum(p.action is Action.SIMULATE for p in plans.values()))
        except UsageError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        instance.add_dynamic_partitions(REGIONS, [str(r) for r in request.regions])
        _print_header(request, requested, home)
        skipped = [r for r, p in plans.items() if p.action is Action.SKIP]
        if skipped:
            _say(f"already done with this configuration (skipped): {_ranges(skipped)}")
        errors, progress = _generate_regions(instance, request, plans, home)
        failed = sorted(errors)
        succeeded = sorted(set(request.regions) - set(failed))
        synthetic_ok = True
        if request.synthetic is not None and succeeded:
            synthetic_ok = _synthetic_source(instance, request, requested["fingerprint"], home)
    _print_summary(request, progress, succeeded, errors, skipped)
    return EXIT_OK if not failed and synthetic_ok else EXIT_FAILED


def _generate_regions(
    instance: Any, request: Request, plans: dict[int, Any], home: Path
) -> tuple[dict[int, str], Progress]:
    """Simulation batches and per-region extractions (see ``deepsif_assets.schedule``); region → error."""
    from deepsif_assets.definitions import REGION_JOB
    from deepsif_assets.partitions import REGIONS
    from deepsif_assets.resume import Action
    from deepsif_assets.schedule import GenerationSchedule, regions_label, simulation_batches
    from neuro_pipelines.runs import RunExecutor, RunSpec

    to_simulate = [r for r in request.regions if plans[r].action is Action.SIMULATE]
    batches = simulation_batches(to_simulate, instance.get_dynamic_partitions(REGIONS), request.batch)
    schedule = GenerationSchedule(
        to_simulate=batches,
        to_extract=[r for r in request.regions if plans[r].action is Action.EXTRACT],
        max_in_flight=request.max_in_flight,
    )
    reporter = ProgressReporter(len(to_simulate) + len(schedule.to_extract))
    # Both cores for one batch when it is all there is to simulate.
    threads = request.workers if len(batches) == 1 else 1

    def on_line(spec: RunSpec, text: str) -> None:
        if request.verbose or "%" in text or text.startswith("✗") or "clips" in text:
            reporter.say(f"[{spec.label}] {text.removeprefix(spec.label + ': ')}")

    executor = RunExecutor(instance, launched_by=PROG, log_dir=home / "logs", on_line=on_line)
    created: dict[int, Any] = {}  # region → its extraction run, created when its raw data is complete
    batch_of: dict[str, list[int]] = {}  # simulation run label → its regions
    errors: dict[int, str] = {}

    def extraction_runs(regions: list[int]) -> None:
        specs = [RunSpec(REGION_JOB, f"region {r}", region_run_config(request, Action.EXTRACT),
                         {"region": str(r)}, partition_key=str(r), asset_selection=("nmm_spikes",)) for r in regions]
        created.update(zip(regions, executor.create(specs), strict=True))

    extraction_runs(schedule.to_extract)
    try:
        while not schedule.finished or executor.busy_workers:
            while executor.busy_workers < request.workers and (work := schedule.next_work()) is not None:
                kind, regions = work
                if kind == "extract":
                    executor.start([created.pop(r) for r in regions])
                else:
                    label = regions_label(regions)
                    batch_of[label] = regions
                    config = region_run_config(request, Action.SIMULATE, threads=threads)
                    executor.start([RunSpec(REGION_JOB, label, config, {"regions": label},
                                            partition_range=(str(regions[0]), str(regions[-1])),
                                            asset_selection=("raw_nmm",))])
            for outcome in executor.poll():
                if outcome.spec.partition_range is not None:  # a simulation batch
                    batch = batch_of.pop(outcome.spec.label)
                    schedule.simulated(batch, outcome.success)
                    if outcome.success:
                        extraction_runs(batch)
                        reporter.say(f"[{outcome.spec.label}] simulated in {format_duration(outcome.seconds)}")
                    else:
                        for region in batch:
                            errors[region] = f"simulation: {outcome.error}"
                            reporter.say(f"[region {region}] ✗ FAILED: simulation: {outcome.error}")
                            reporter.finished(False)
                    continue
                region = int(outcome.spec.partition_key)
                schedule.extracted(region)
                clips = outcome.materializations.get("nmm_spikes", {}).get("total_clips")
                if outcome.success:
                    reporter.say(f"[region {region}] ✓ done: {clips} clips")
                else:
                    errors[region] = outcome.error or "failed"
                    reporter.say(f"[region {region}] ✗ FAILED: {outcome.error}")
                reporter.finished(outcome.success)
    finally:
        executor.abandon(list(created.values()), f"{PROG} stopped before this run started")
        executor.close()
        reporter.close()
    return errors, reporter.progress


def _synthetic_source(instance: Any, request: Request, fingerprint: str, home: Path) -> bool:
    from deepsif_assets.definitions import SYNTHETIC_JOB
    from neuro_pipelines.runs import RunSpec, run_jobs

    _say(BANNER)
    _say("synthetic source over the regions done with this configuration")
    (outcome,) = run_jobs(
        instance,
        [RunSpec(SYNTHETIC_JOB, "synthetic source", synthetic_run_config(request, fingerprint))],
        launched_by=PROG,
        log_dir=home / "logs",
        on_line=lambda spec, text: _say(f"[{spec.label}] {text}") if request.verbose else None,
    )
    path = outcome.materializations.get("synthetic_source", {}).get("output_file")
    _say(f"✓ synthetic source: {path}" if outcome.success else f"✗ synthetic source failed: {outcome.error}")
    return outcome.success


def _ranges(regions: list[int]) -> str:
    """``0-4, 7, 9-10``."""
    parts, start = [], None
    for i, r in enumerate(regions):
        if start is None:
            start = r
        if i + 1 == len(regions) or regions[i + 1] != r + 1:
            parts.append(str(start) if start == r else f"{start}-{r}")
            start = None
    return ", ".join(parts)


def _print_header(request: Request, requested: dict[str, Any], home: Path) -> None:
    sim = request.simulation
    _say(BANNER)
    _say(f"DeepSIF data generation: regions {_ranges(request.regions)} ({len(request.regions)})")
    _say(
        f"  dt {sim.dt:g} ms, {sim.n_segments} × {sim.segment_ms:g} ms, iterations {list(sim.iterations)}, "
        f"engine {request.options.engine}, {request.workers} workers, {request.batch} regions per simulation run"
    )
    _say(f"  source {request.source_dir}   configuration {requested['fingerprint']}")
    _say(f"  Dagster instance {home} (runs of deepsif_region_job; `bash scripts/ui.sh` shows them)")
    _say(BANNER)


def _print_summary(request: Request, progress: Progress, succeeded, errors: dict[int, str], skipped) -> None:
    _say(BANNER)
    _say(f"SUMMARY  {progress.line()}")
    _say(f"  successful regions: {len(succeeded)}/{len(request.regions)} ({len(skipped)} skipped as already done)")
    _say(f"  failed regions: {len(errors)} {sorted(errors)}")
    for region, error in sorted(errors.items()):
        _say(f"    region {region}: {error}")
    _say(BANNER)


if __name__ == "__main__":
    sys.exit(main())
