"""Everything a DeepSIF generation needs, checked before the first run is launched (pure).

Bad configuration must never be found inside a run (after a region simulated for minutes, leaving 1.2 GB of raw
data behind): each problem is one line naming the file or value and what was expected.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import scipy.io

from deepsif_assets.extraction import RegionDataError, check_leadfield
from deepsif_assets.params import ExtractionParams, SimulationOptions, SyntheticParams
from deepsif_assets.simulation.connectivity import ConnectivityError, load_connectivity
from deepsif_assets.simulation.params import N_FS_REGIONS, N_TVB_NODES, SimulationParams
from deepsif_assets.synthetic.anatomy import CORTEX_FILE, DIS_MATRIX_FILE, INFLATED_FILE, REGION_MAPPING_FILE
from neuro_core.files import NotWritableError, PathEscapeError, check_writable_dir, confined_path

# Peak disk of one region in flight, beyond its raw data: ≈ 30 clips × 2 MB plus the peak-window cache.
CLIPS_BYTES_ALLOWANCE = 100e6
# Memory per lane beyond what its format holds: its share of the run's process, the engine state, chunk and write
# buffers; generous (a 12-lane batch measured 0.32 GB in all with the compact format).
LANE_WORKING_BYTES = 120e6
# Share of the available memory that simulation batches may plan to use (Octave and the instance need the rest).
MEMORY_HEADROOM = 0.8
_ANATOMY_VARIABLES = {
    INFLATED_FILE: ("pos", "tri"),
    REGION_MAPPING_FILE: ("rm", "nbs"),
}


def raw_bytes_per_region(params: SimulationParams, options: SimulationOptions) -> float:
    """Raw data one region writes: compact: one decimated (n × 994) single per iteration; original: every
    float32 (steps × 998) segment."""
    if options.raw_format == "compact":
        per_iteration = params.n_decimated * N_FS_REGIONS * 4
    else:
        per_iteration = params.total_steps * N_TVB_NODES * 4
    return per_iteration * len(params.iterations)


def memory_bytes_per_region(params: SimulationParams, options: SimulationOptions) -> float:
    """Memory one region of a simulation batch holds: original format: one (steps × 998) segment per iteration
    until it is written (compact: its rows go to their files as they come); plus each lane's engine state and
    buffers."""
    held = 0 if options.raw_format == "compact" else params.steps_per_segment * N_TVB_NODES * 4
    return (held + LANE_WORKING_BYTES) * len(params.iterations)


def available_memory_bytes() -> float | None:
    """MemAvailable of /proc/meminfo (None where the kernel does not report it)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def regions_per_batch(
    requested: int | None,
    default: int,
    workers: int,
    n_regions: int,
    per_region: float,
    available: float | None,
) -> int:
    """Regions per simulation run for ``n_regions`` to simulate with ``workers`` runs at once: ``requested`` if
    their memory fits in the usable share of ``available``; without a request, the largest batch ≤ ``default``
    that fits. :class:`ValueError` says what to lower when nothing fits."""
    if available is None or n_regions == 0:
        return requested or default
    usable = available * MEMORY_HEADROOM

    def needed(batch: int) -> float:
        runs = min(workers, math.ceil(n_regions / batch))
        return min(runs * batch, n_regions) * per_region

    if requested is not None and needed(requested) <= usable:
        return requested
    if requested is None:
        for batch in range(default, 0, -1):
            if needed(batch) <= usable:
                return batch
    batch = requested or 1
    if needed(1) <= usable:
        remedy = "lower --batch"
    elif per_region <= usable:
        remedy = "lower --workers"
    else:
        remedy = "one region's simulation does not fit"
    raise ValueError(
        f"simulation runs of {batch} region(s), {workers} at once, need ≈ {needed(batch) / 1e9:.1f} GB of memory; "
        f"{usable / 1e9:.1f} GB usable ({MEMORY_HEADROOM:.0%} of {available / 1e9:.1f} GB available): {remedy}"
    )


def anatomy_path(anatomy_dir: Path, name: str, what: str) -> tuple[Path | None, str | None]:
    """An anatomy file (symlinks accepted: DataLad/git-annex trees), or a one-line problem."""
    try:
        path = confined_path(anatomy_dir, name, follow_symlinks=True)
    except PathEscapeError as exc:
        return None, f"{what} {name!r}: {exc}"
    if not path.is_file():
        return None, f"{what} {path} is missing (anatomy folder {anatomy_dir})"
    return path, None


def validate_generation(
    anatomy_dir: Path,
    source_dir: Path,
    simulation: SimulationParams,
    options: SimulationOptions,
    extraction: ExtractionParams,
    synthetic: SyntheticParams | None,
    regions_in_flight: int,
    check_engine: Callable[[], None],
) -> list[str]:
    """One line per problem with the anatomy, the Octave/MATLAB engine, the output folder or its free space."""
    problems = []
    connectivity, problem = anatomy_path(anatomy_dir, options.connectivity_file, "connectome")
    if problem:
        problems.append(problem)
    else:
        try:
            nodes = load_connectivity(connectivity).n_nodes
            if nodes < N_TVB_NODES:
                problems.append(f"connectome {connectivity} has {nodes} nodes; expected {N_TVB_NODES}")
        except ConnectivityError as exc:
            problems.append(str(exc))
    leadfield, problem = anatomy_path(anatomy_dir, extraction.leadfield_name, "lead field")
    if problem:
        problems.append(problem)
    else:
        try:
            check_leadfield(leadfield, N_FS_REGIONS)
        except RegionDataError as exc:
            problems.append(str(exc))
    if synthetic is not None:
        problems += _synthetic_anatomy_problems(anatomy_dir)
    try:
        check_engine()
    except Exception as exc:  # the engine's own message says what is missing
        problems.append(str(exc).splitlines()[0])
    try:
        check_writable_dir(source_dir, "source folder")
    except NotWritableError as exc:
        return [*problems, str(exc)]
    needed = regions_in_flight * (raw_bytes_per_region(simulation, options) + CLIPS_BYTES_ALLOWANCE)
    free = shutil.disk_usage(source_dir).free
    if free < needed:
        problems.append(
            f"source folder {source_dir} has {free / 1e9:.2f} GB free; {regions_in_flight} region(s) in flight "
            f"need ≈ {needed / 1e9:.2f} GB (raw data until the clips are verified): free space or lower --workers"
        )
    return problems


def _synthetic_anatomy_problems(anatomy_dir: Path) -> list[str]:
    problems = []
    files = dict(_ANATOMY_VARIABLES)
    if not (anatomy_dir / DIS_MATRIX_FILE).exists():
        files[CORTEX_FILE] = ("pos",)  # the distance matrix stand-in is derived from it
    for name, variables in files.items():
        path, problem = anatomy_path(anatomy_dir, name, "anatomy file")
        if problem:
            problems.append(problem + " (needed by the synthetic source; or pass --no-synthetic-source)")
            continue
        try:
            present = {variable for variable, _shape, _cls in scipy.io.whosmat(path)}
        except Exception as exc:
            problems.append(f"anatomy file {path} is not a readable MAT file: {exc}")
            continue
        missing = [v for v in variables if v not in present]
        if missing:
            problems.append(f"anatomy file {path} lacks variable(s) {missing}")
    return problems
