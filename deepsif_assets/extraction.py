"""Whether a region's clips are complete, and the clip-extraction step itself (pure, Dagster-free).

The file layout is in :mod:`deepsif_assets.layout`. Extraction is *complete* when every iteration has its marker,
the markers' cumulative counts never decrease, and the clip files are exactly ``nmm_1 … nmm_{num_spike of the last
iteration}`` (zero clips allowed). Anything else that left files behind is *partial* and is wiped before the region
is extracted again, so a crashed run can never leave duplicate or stale clips. Raw data is deleted only after the
clips and markers were written and verified; when extraction fails the raw folder stays with
``_extraction_failed.json`` describing the error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.io

from deepsif_assets.layout import RegionLayout, clip_numbers
from deepsif_assets.params import ExtractionParams
from deepsif_assets.simulation.params import N_FS_REGIONS
from neuro_core.files import is_own_temp_name, remove_stale_temp_files, tree_size_bytes, write_json_atomic
from neuro_core.locks import LockBusyError, exclusive_lock
from neuro_core.measure import PeakDiskSampler, Stopwatch, process_peak_rss_bytes

EXTRACTION_FAILED_FLAG = "_extraction_failed.json"
_PARTIAL_PREFIX = ".partial_"
CLIP_SHAPE = ((500, N_FS_REGIONS), "single")


class RegionDataError(ValueError):
    """A region's files on disk are missing or inconsistent."""


class RegionBusyError(RuntimeError):
    """Another run is working on the same region right now."""


@contextlib.contextmanager
def region_lock(layout: RegionLayout, step: str) -> Iterator[None]:
    """Hold the region's lock while a step works on its files; fail at once if another run holds it.

    Two runs of the same region at once would otherwise wipe each other's raw data or clips.
    """
    try:
        with exclusive_lock(layout.lock_path, f"step {step} of region {layout.region}"):
            yield
    except LockBusyError as exc:
        raise RegionBusyError(
            f"region {layout.region} is being processed by another run ({exc}); {step} not started. "
            "Wait for that run to finish."
        ) from None


def remove_killed_raw_writes(layout: RegionLayout) -> list[Path]:
    """The half-written raw files (our writers' temporary files) that a killed simulation left in the region's raw
    folder, removed if no run holds the region (a simulation holds it while it writes); returns what was removed.

    A simulation removes them itself before it starts, but a command should not count them against the free
    space it needs, nor leave them for regions it does not simulate again."""
    if not layout.raw_dir.is_dir() or not any(is_own_temp_name(p.name) for p in layout.raw_dir.iterdir()):
        return []
    try:
        with region_lock(layout, "removing a killed simulation's temporary files"):
            return remove_stale_temp_files(layout.raw_dir)
    except RegionBusyError:
        return []


def raw_is_complete(layout: RegionLayout) -> bool:
    return layout.raw_complete_flag.is_file()


def read_raw_record(layout: RegionLayout) -> dict[str, Any]:
    """The simulation's ``_complete.json`` (what made the raw data)."""
    try:
        return json.loads(layout.raw_complete_flag.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RegionDataError(f"raw data record {layout.raw_complete_flag} is unreadable: {exc}") from None


@dataclass(frozen=True)
class Marker:
    num_spike: int  # cumulative clips of the region after this iteration
    spike_time: tuple[int, ...]  # kept peak times (1-based downsampled samples)


def read_marker(path: Path) -> Marker:
    """A ``clip_info`` marker; a clear error if it is not a readable MAT file with ``num_spike``."""
    try:
        content = scipy.io.loadmat(path, variable_names=["num_spike", "spike_time"])
    except Exception as exc:
        raise RegionDataError(f"marker {path} is not a readable MAT (v5/v7) file: {exc}") from exc
    if "num_spike" not in content:
        raise RegionDataError(f"marker {path} has no variable num_spike")
    times = np.asarray(content.get("spike_time", np.zeros((1, 0)))).ravel()
    return Marker(int(np.asarray(content["num_spike"]).item()), tuple(int(t) for t in times))


class ExtractionState(enum.Enum):
    EMPTY = "empty"  # no clips, no markers: never extracted (or wiped)
    PARTIAL = "partial"  # something was written but the region is not complete: wipe and redo
    COMPLETE = "complete"


@dataclass(frozen=True)
class ExtractionStatus:
    state: ExtractionState
    markers: dict[int, Marker]
    clips_per_iteration: dict[int, int]
    total_clips: int
    reason: str = ""


def extraction_status(layout: RegionLayout, iterations: list[int] | tuple[int, ...]) -> ExtractionStatus:
    """Classify the region's clips and markers for ``iterations`` (in processing order)."""
    markers: dict[int, Marker] = {}
    for m in iterations:
        path = layout.marker_path(m)
        if path.is_file():
            try:
                markers[m] = read_marker(path)
            except RegionDataError as exc:
                return ExtractionStatus(ExtractionState.PARTIAL, markers, {}, 0, str(exc))
    numbers = clip_numbers(layout.clip_dir)
    leftovers = layout.clip_dir.is_dir() and any(
        p.name.startswith(_PARTIAL_PREFIX) for p in layout.clip_dir.iterdir()
    )
    if not markers:
        if numbers or leftovers:
            return ExtractionStatus(
                ExtractionState.PARTIAL, {}, {}, 0, f"{len(numbers)} clips but no markers"
            )
        return ExtractionStatus(ExtractionState.EMPTY, {}, {}, 0)
    missing = [m for m in iterations if m not in markers]
    if missing:
        return ExtractionStatus(
            ExtractionState.PARTIAL, markers, {}, 0, f"markers missing for iterations {missing}"
        )
    per_iteration: dict[int, int] = {}
    previous = 0
    for m in iterations:
        count = markers[m].num_spike - previous
        if count < 0 or count != len(markers[m].spike_time):
            return ExtractionStatus(
                ExtractionState.PARTIAL, markers, {}, 0, f"marker of iteration {m} is inconsistent"
            )
        per_iteration[m] = count
        previous = markers[m].num_spike
    if numbers != list(range(1, previous + 1)) or leftovers:
        return ExtractionStatus(
            ExtractionState.PARTIAL,
            markers,
            per_iteration,
            previous,
            f"clip files {numbers[:5]}… ({len(numbers)}) do not match the markers' total {previous}",
        )
    return ExtractionStatus(ExtractionState.COMPLETE, markers, per_iteration, previous)


def wipe_extraction(layout: RegionLayout) -> int:
    """Remove the region's clips, partial files, markers (of every iteration) and window cache; return the count."""
    removed = 0
    if layout.clip_dir.is_dir():
        for path in layout.clip_dir.iterdir():
            if path.is_file():
                path.unlink()
                removed += 1
    info = layout.clip_root / "clip_info"
    if info.is_dir():
        for path in info.glob(f"iter*/iter_*_i_{layout.region}.mat"):
            path.unlink()
            removed += 1
        for path in info.glob(f"iter*/{_PARTIAL_PREFIX}iter_*_i_{layout.region}.mat"):
            path.unlink()
            removed += 1
    cache = layout.window_cache_path
    for path in (cache, cache.with_name(_PARTIAL_PREFIX + cache.name)):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def delete_raw(layout: RegionLayout) -> int:
    """Delete the region's raw folder; return the bytes freed (0 if it was already gone)."""
    freed = tree_size_bytes(layout.raw_dir)
    if layout.raw_dir.exists():
        shutil.rmtree(layout.raw_dir)
    return freed


def clip_shapes(layout: RegionLayout, total: int) -> dict[tuple[tuple[int, ...], str], int]:
    """How many clips have each (shape, MATLAB class) of their ``data`` variable (read from headers only)."""
    found: dict[tuple[tuple[int, ...], str], int] = {}
    for k in range(1, total + 1):
        variables = {name: (shape, cls) for name, shape, cls in scipy.io.whosmat(layout.clip_path(k))}
        key = variables.get("data", ((), "missing"))
        found[key] = found.get(key, 0) + 1
    return found


def check_leadfield(path: Path, n_regions: int) -> tuple[int, int]:
    """The lead field's ``fwd`` shape; a clear error unless it is a 2-D (n_electrodes, n_regions) matrix."""
    try:
        variables = {name: shape for name, shape, _cls in scipy.io.whosmat(path)}
    except Exception as exc:
        raise RegionDataError(f"lead field {path} is not a readable MAT file: {exc}") from exc
    if "fwd" not in variables:
        raise RegionDataError(f"lead field {path} has no variable fwd (found {sorted(variables)})")
    shape = tuple(variables["fwd"])
    if len(shape) != 2 or shape[1] != n_regions:
        raise RegionDataError(
            f"lead field fwd in {path} has shape {shape}; expected (n_electrodes, {n_regions})"
        )
    return shape[0], shape[1]


class ClipEngine(Protocol):
    """What the step needs from the Octave/MATLAB engine (``resources.octave.OctaveResource`` provides it)."""

    backend: str

    def call(self, function: str, *args: Any, nout: int = 0) -> Any: ...

    def engine_pid(self) -> int | None: ...

    def last_output(self) -> list[str]: ...


@dataclass
class ExtractionReport:
    """What one extraction step did; the numbers the asset reports and checks."""

    status: ExtractionStatus
    adopted: bool  # complete clips found without raw data (a run that died after cleanup): verified, kept
    wiped_files: int
    raw_deleted: bool
    raw_bytes_freed: int
    peak_disk_bytes: int
    laps_s: dict[str, float] = field(default_factory=dict)
    engine_peak_rss_bytes: int | None = None
    engine_output: list[str] = field(default_factory=list)


def extract_region(
    layout: RegionLayout,
    params: ExtractionParams,
    leadfield: Path,
    engine: ClipEngine,
    configuration: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> ExtractionReport:
    """Clips of one region from its complete raw data (or adopt complete clips), verify them, delete raw data.

    ``configuration`` (the region's configuration and fingerprint, see :mod:`deepsif_assets.fingerprint`) is
    written beside the clips once they are verified, before raw data goes.
    """
    check_leadfield(leadfield, N_FS_REGIONS)
    watch = Stopwatch()
    before = extraction_status(layout, params.iterations)
    report = ExtractionReport(before, False, 0, False, 0, 0)
    with region_lock(layout, "nmm_spikes"), PeakDiskSampler([layout.raw_dir, layout.clip_dir]) as disk:
        if raw_is_complete(layout):
            _extract_from_raw(layout, params, leadfield, engine, before, report, log)
        else:
            _adopt_complete_clips(layout, engine, before, log)
            report.adopted = True
        report.laps_s["extraction_s"] = watch.lap("extraction_s")
        report.status = extraction_status(layout, params.iterations)
        if configuration is not None:
            write_json_atomic(layout.configuration_path, configuration)
        disk.sample()
        if not params.keep_raw and layout.raw_dir.exists():
            report.raw_bytes_freed = delete_raw(layout)
            report.raw_deleted = True
            log(f"region {layout.region}: deleted raw data ({report.raw_bytes_freed / 1e6:.1f} MB)")
        report.laps_s["cleanup_s"] = watch.lap("cleanup_s")
    report.peak_disk_bytes = disk.peak_bytes
    return report


def _extract_from_raw(
    layout: RegionLayout,
    params: ExtractionParams,
    leadfield: Path,
    engine: ClipEngine,
    before: ExtractionStatus,
    report: ExtractionReport,
    log: Callable[[str], None],
) -> None:
    if before.state is not ExtractionState.EMPTY:
        report.wiped_files = wipe_extraction(layout)
        log(
            f"region {layout.region}: earlier extraction was {before.state.value} "
            f"({before.reason or 'complete'}); removed {report.wiped_files} files, extracting again"
        )
    log(f"region {layout.region}: extracting clips with {engine.backend} from {layout.raw_dir}")
    try:
        engine.call(
            "process_region_clips",
            layout.region,
            str(layout.source_dir),
            str(leadfield),
            layout.filename,
            params.matlab_options(N_FS_REGIONS),
        )
        pid = engine.engine_pid()
        report.engine_peak_rss_bytes = process_peak_rss_bytes(pid) if pid else None
        report.engine_output = engine.last_output()
        status = extraction_status(layout, params.iterations)
        if status.state is not ExtractionState.COMPLETE:
            raise RegionDataError(f"region {layout.region}: extraction finished but {status.reason}")
    except Exception as exc:
        _record_failure(layout, exc)
        log(f"region {layout.region}: extraction failed; raw data kept in {layout.raw_dir}")
        raise


def _adopt_complete_clips(
    layout: RegionLayout, engine: ClipEngine, before: ExtractionStatus, log: Callable[[str], None]
) -> None:
    from deepsif_assets.synthetic.clips import window_cache_covers

    if before.state is not ExtractionState.COMPLETE:
        raise RegionDataError(
            f"region {layout.region}: raw data in {layout.raw_dir} is missing or incomplete (no _complete.json) "
            f"and its clips are {before.state.value}: materialize raw_nmm for partition {layout.region} first"
        )
    log(f"region {layout.region}: raw data gone, clips and markers complete: verified, not re-extracted")
    total = before.total_clips
    if total and not window_cache_covers(layout.clip_root, layout.region, total, N_FS_REGIONS):
        # clips from before the cache existed, or a crash between the last clip and the cache
        engine.call("write_clip_windows", str(layout.clip_dir), layout.region, total, str(layout.window_cache_path))
        log(f"region {layout.region}: wrote the peak-window cache {layout.window_cache_path}")


def _record_failure(layout: RegionLayout, error: BaseException) -> None:
    """Leave the error beside the kept raw data (for debugging; the failed step itself is recorded by Dagster).

    Best effort: on a full disk this note cannot be written, and that must not hide the original error.
    """
    if layout.raw_dir.is_dir():
        with contextlib.suppress(OSError):
            write_json_atomic(
                layout.raw_dir / EXTRACTION_FAILED_FLAG,
                {"region": layout.region, "error": str(error), "at": dt.datetime.now(dt.UTC).isoformat()},
            )


def clip_check_results(
    layout: RegionLayout, status: ExtractionStatus, keep_raw: bool
) -> dict[str, tuple[bool, dict[str, Any]]]:
    """The three in-asset checks: clip shapes, clip count vs markers, raw data cleaned up."""
    shapes = clip_shapes(layout, status.total_clips)
    count_ok = (
        status.total_clips
        == sum(status.clips_per_iteration.values())
        == len(clip_numbers(layout.clip_dir))
    )
    return {
        "clip_shapes": (
            set(shapes) <= {CLIP_SHAPE},
            {"shapes": {f"{s} {c}": n for (s, c), n in shapes.items()}},
        ),
        "clip_count_matches_markers": (count_ok, {"markers_total": status.total_clips}),
        "raw_cleaned_up": (keep_raw or not layout.raw_dir.exists(), {"raw_exists": layout.raw_dir.exists()}),
    }


def source_traces(layout: RegionLayout, total: int, n_traces: int = 6) -> np.ndarray:
    """The source channel of up to ``n_traces`` clips spread over the region's clips, (n, 500)."""
    picks = np.unique(np.linspace(1, total, num=min(total, n_traces)).round().astype(int))
    return np.stack([scipy.io.loadmat(layout.clip_path(int(k)))["data"][:, layout.region] for k in picks])
