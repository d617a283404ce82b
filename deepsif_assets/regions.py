"""On-disk layout of one region's outputs and the rules that say whether they are complete (pure, Dagster-free).

Layout (spec §2, §4.8, §5.8–§5.9), under the source folder:

- ``raw_nmm/a{r}/`` — the simulation output (original segments or compact ``_ds.mat`` files); ``_complete.json``
  is written last by the simulation, so raw data without it is a crashed, partial run;
- ``nmm_<filename>/a{r}/nmm_{k}.mat`` — clips ``data`` (500 × 994 single), k = 1 … total;
- ``nmm_<filename>/clip_info/iter{m}/iter_{m}_i_{r}.mat`` — markers ``num_spike`` (cumulative) and ``spike_time``;
- ``nmm_<filename>/clip_windows/a{r}.mat`` — the clips' peak windows (uncompressed), a derived cache written at the
  end of extraction and read by the synthetic-source step instead of inflating every clip (not part of the
  completeness rule: the generator falls back to the clips when it is absent).

Extraction is *complete* when every iteration has its marker, the markers' cumulative counts never decrease, and
the clip files are exactly ``nmm_1 … nmm_{num_spike of the last iteration}`` (zero clips allowed). Anything else
that left files behind is *partial* and is wiped before the region is extracted again, so a crashed run can
never leave duplicate or stale clips.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from neuro_pipelines.fsutil import confined_path, tree_size_bytes

RAW_COMPLETE_FLAG = "_complete.json"
EXTRACTION_FAILED_FLAG = "_extraction_failed.json"
_CLIP_NAME = re.compile(r"^nmm_(\d+)\.mat$")
_PARTIAL_PREFIX = ".partial_"
WINDOW_CACHE_DIR = "clip_windows"


class RegionDataError(ValueError):
    """A region's files on disk are missing or inconsistent."""


class RegionBusyError(RuntimeError):
    """Another run is working on the same region right now."""


@contextlib.contextmanager
def region_lock(layout: RegionLayout, step: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on one region's files for the duration of a step.

    Two runs of the same region at once would otherwise wipe each other's raw data or clips. ``flock`` locks die
    with their process, so a run killed with SIGKILL never leaves a stale lock behind.
    """
    path = layout.lock_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RegionBusyError(
                f"region {layout.region} is being processed by another run ({holder}); {step} not started. "
                f"Wait for that run to finish (lock file {path})."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, step {step}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def window_cache_path(clip_root: Path, region: int) -> Path:
    """``nmm_<filename>/clip_windows/a{region}.mat``: the clips' peak windows (``matlab/write_clip_windows.m``)."""
    return Path(clip_root) / WINDOW_CACHE_DIR / f"a{region}.mat"


@dataclass(frozen=True)
class RegionLayout:
    """Paths of one region's raw data, clips and markers under ``source_dir``."""

    source_dir: Path
    region: int
    filename: str = "spikes"

    @property
    def raw_dir(self) -> Path:
        return confined_path(self.source_dir, "raw_nmm", f"a{self.region}")

    @property
    def raw_complete_flag(self) -> Path:
        return self.raw_dir / RAW_COMPLETE_FLAG

    @property
    def clip_root(self) -> Path:
        return confined_path(self.source_dir, f"nmm_{self.filename}")

    @property
    def clip_dir(self) -> Path:
        return self.clip_root / f"a{self.region}"

    def clip_path(self, k: int) -> Path:
        return self.clip_dir / f"nmm_{k}.mat"

    @property
    def lock_path(self) -> Path:
        return confined_path(self.source_dir, ".locks", f"a{self.region}.lock")

    def marker_path(self, iteration: int) -> Path:
        return self.clip_root / "clip_info" / f"iter{iteration}" / f"iter_{iteration}_i_{self.region}.mat"

    @property
    def window_cache_path(self) -> Path:
        """Peak windows of the clips (``matlab/write_clip_windows.m``), read by the synthetic-source step."""
        return window_cache_path(self.clip_root, self.region)


@dataclass(frozen=True)
class Marker:
    num_spike: int  # cumulative clips of the region after this iteration
    spike_time: tuple[int, ...]  # kept peak times (1-based downsampled samples)


def raw_is_complete(layout: RegionLayout) -> bool:
    return layout.raw_complete_flag.is_file()


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


def clip_numbers(layout: RegionLayout) -> list[int]:
    """Sorted k of the ``nmm_{k}.mat`` files present."""
    if not layout.clip_dir.is_dir():
        return []
    numbers = [int(m.group(1)) for p in layout.clip_dir.iterdir() if (m := _CLIP_NAME.match(p.name))]
    return sorted(numbers)


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
    numbers = clip_numbers(layout)
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
