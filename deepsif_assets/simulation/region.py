"""Simulate one cortical region (all iterations) and write its raw files atomically.

Layout of ``out_dir`` (= ``<source>/raw_nmm/a{r}/``):

* ``raw_format="original"``: per iteration m and segment k, ``mean_iter_{m}_a_iter_{r}_{k}.mat`` with ``time``
  float64 (1, T) ms (continuing across segments), ``data`` float32 (T, n_tvb) = y1 − y2, ``A`` float64 (1, n_tvb).
* ``raw_format="compact"`` (default): per iteration one ``mean_iter_{m}_a_iter_{r}_ds.mat`` with ``all_data`` single
  (n_ds, 994) and ``all_time`` double (n_ds, 1): exactly the array ``process_raw_nmm.m`` builds (and caches as
  ``_ds.mat``) from the raw segments in numeric order — concatenate, drop the first ``transient_samples`` rows, keep
  every ``downsample_factor``-th row starting with the first, take fs column c from TVB node ``FS_TO_TVB[c]``.
  It is written while simulating (a few thousand rows per lane are buffered).
* ``_complete.json`` is written last (atomically) after every iteration succeeded: params, format, files and sizes,
  seeds. Its presence means "raw complete".

Several regions at once: :func:`simulate_regions` runs all iterations of all given regions as lanes of one lock-step
batch (:mod:`.lanes`; engine "fast") and writes every region's directory exactly as :func:`simulate_region` does
(which is its one-region call). A lane's output does not depend on the batch it runs in. Memory: the compact
format streams each lane's rows into its file (:class:`_CompactFiles`; 17 MB of buffers per lane) and needs about
10 MB per lane of engine state and chunk buffer besides: a batch of 4 regions = 12 lanes in the original
configuration peaked at 0.32 GB RSS (holding the rows until the end: 4.87 GB, and 23 s more CPU time).
``raw_format="original"`` holds one segment (T × 998 float32, ≈ 80 MB at 10 s, dt 0.5) per lane.

Crash recovery: :func:`simulate_region` first deletes ``_complete.json`` and then every file it may have written
before (``mean_iter_*_a_iter_{r}_*.mat`` and leftover temp files of the atomic writes) in ``out_dir``, so a run
killed half-way (no ``_complete.json``) is simply redone from scratch; other files are left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neuro_core.files import atomic_path, naming_path, write_json_atomic

from .chunks import append_rows, copy_decimated_rows, first_kept_row, update_lane_peaks
from .connectivity import Connectivity, load_connectivity
from .lanes import DEFAULT_PRECISION, ENGINE_PRECISIONS, Lane
from .matfile import create_mat, write_column_run, write_mat
from .params import (
    FS_TO_TVB,
    SimulationParams,
    SimulationParamsError,
    a_vector,
    check_region,
    excitable_tvb_node,
    iteration_seed,
    noise_nsig,
)

ENGINES = ("fast", "tvb")
RAW_FORMATS = ("compact", "original")
COMPLETE_MARKER = "_complete.json"
#: bytes of one fast-engine chunk (steps × nodes × lanes float32; results do not depend on it): small enough to
#: stay in the cache while each lane's rows are copied out (a 2,000-step chunk of 12 lanes, 96 MB, was streamed
#: from memory once per lane)
CHUNK_BYTES = 4_000_000

ProgressCallback = Callable[[int, int, float], None]  # simulate_region: (iteration, segment, pct of region)
RegionsProgressCallback = Callable[[int, float], None]  # simulate_regions: (region, pct of that region)


def segment_file_name(iteration: int, region: int, segment: int) -> str:
    return f"mean_iter_{iteration}_a_iter_{region}_{segment}.mat"


def compact_file_name(iteration: int, region: int) -> str:
    return f"mean_iter_{iteration}_a_iter_{region}_ds.mat"


@dataclass
class RegionSimulationResult:
    """What :func:`simulate_region` did; :meth:`to_metadata` gives a JSON-able dict."""

    region: int
    out_dir: str
    engine: str
    raw_format: str
    excitable_tvb_node: int
    mapping: str
    precision: str | None = None  # fast engine: "fast" / "faithful" (lanes.ENGINE_PRECISIONS); tvb: None
    lanes: int = 1  # simulations advanced together in the batch that produced this region
    threads: int = 1
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    seeds: dict[int, int] = field(default_factory=dict)  # iteration -> RandomState seed
    # iteration -> max |y1 − y2| over the rows the extraction reads (after the transient, decimated)
    peak_abs_after_transient: dict[int, float] = field(default_factory=dict)
    steps: int = 0
    wall_time_s: float = 0.0
    engine_time_s: float = (
        0.0  # batched: this region's share (its lanes / all lanes) of the batch's engine time
    )
    # A short stretch of y1 − y2 at the excitable node just after the transient (first iteration), for plots.
    preview_time_ms: np.ndarray | None = field(default=None, repr=False)
    preview_mv: np.ndarray | None = field(default=None, repr=False)

    @property
    def bytes_written(self) -> int:
        return sum(self.files.values())

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.engine_time_s / self.steps if self.steps else float("nan")

    def to_metadata(self) -> dict:
        out = asdict(self)
        out.pop("preview_time_ms")
        out.pop("preview_mv")
        out["seeds"] = {str(k): v for k, v in self.seeds.items()}
        out["peak_abs_after_transient"] = {str(k): v for k, v in self.peak_abs_after_transient.items()}
        out["bytes_written"] = self.bytes_written
        out["ms_per_step"] = self.ms_per_step
        return out


def _make_tvb_engine(
    connectivity_zip: Path,
    a_per_node: np.ndarray,
    mu: float,
    nsig: float,
    params: SimulationParams,
    seed: int,
):
    from .tvb_reference import TvbJansenRitSimulator

    return TvbJansenRitSimulator(
        connectivity_zip,
        a_per_node,
        mu,
        nsig,
        dt=params.dt,
        seed=seed,
        conduction_speed=params.conduction_speed,
        constants=_constants(params),
    )


def _constants(params: SimulationParams):
    from .engine import JansenRitConstants

    return JansenRitConstants(v0=params.v0, coupling_a=params.coupling_a)


PREVIEW_MS = 2000.0


def _clear_previous_output(out_dir: Path, region: int) -> None:
    """Remove the completion marker first, then every raw file / temp file of a previous run for ``region``."""
    (out_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    pattern = re.compile(
        rf"^\.?(mean_iter_\d+_a_iter_{region}_(\d+|ds)\.mat|{re.escape(COMPLETE_MARKER)})(\..*\.tmp)?$"
    )
    for path in out_dir.iterdir():
        if path.is_file() and pattern.match(path.name):
            path.unlink()


def _savemat_atomic(target: Path, variables: dict) -> int:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        write_mat(f, variables)
    return target.stat().st_size


class _CompactFiles:
    """Streams the raw y1 − y2 chunks of a batch's lanes into their compact files (see module docstring): the
    kept rows are gathered per lane and written, ``ROWS_PER_WRITE`` rows of each column at a time, into the
    lane's temporary file, laid out and allocated at the start (:func:`.matfile.create_mat`); ``all_time``, the
    same for every lane, is written by :meth:`finish`. The temporary files are renamed onto their targets when
    ``stack`` closes without an error, and removed otherwise.

    Why buffers and runs of rows: every chunk adds a few rows to each of the 994 columns, so filling each lane's
    whole array (or its mapped file) in place touched ≈ 1,000 fresh pages per lane and chunk. Outside the engine, a
    4-region batch in the original configuration took 40 s holding the arrays until the end, 35 s with mapped
    files, 17 s this way. Each write is one system call per column, so longer runs cost less: 4,096 rows
    (16 MB buffered per lane) took 0.66–0.71 s of ``pwrite`` per 4 segments of a 4-region batch, 2,048 rows
    0.89–1.03 s. A chunk's ≈ 20 rows first go into a tile of ``TILE_ROWS`` rows per column that stays in the
    cache, and from there in whole cache lines into the write buffer: copying a chunk's rows straight into the
    200-MB write buffer wrote a few bytes into each of 24,000 lines that were no longer cached (0.75–0.79 ms per
    12-lane chunk; 0.57 through the tile)."""

    ROWS_PER_WRITE = 4096  # 16 KB per column and write
    TILE_ROWS = 64  # 256 bytes per column: four cache lines

    def __init__(
        self,
        params: SimulationParams,
        columns: np.ndarray,
        targets: Sequence[Path],
        chunk_steps: int,
        stack: contextlib.ExitStack,
    ) -> None:
        self.skip = params.transient_samples
        self.factor = params.downsample_factor
        self.n_rows = params.n_decimated
        self.columns = np.ascontiguousarray(columns, dtype=np.int64)
        self.all_time = np.empty(self.n_rows, dtype=np.float64)
        variables = {
            "all_data": ((self.n_rows, len(columns)), np.float32),
            "all_time": ((self.n_rows, 1), np.float64),
        }
        self.files = []  # (target path, open temporary file, data offsets)
        for target in targets:
            tmp = stack.enter_context(atomic_path(target))
            # closed before the rename: the stack unwinds in reverse order
            file = stack.enter_context(open(tmp, "r+b"))  # noqa: SIM115 (the stack is the context manager)
            with naming_path(target):
                self.files.append((target, file, create_mat(file, variables)))
        tile_capacity = self.TILE_ROWS + chunk_steps // self.factor + 1
        self.tile = np.empty((len(targets), len(columns), tile_capacity), dtype=np.float32)
        self.staged = np.empty((len(targets), len(columns), self.ROWS_PER_WRITE + tile_capacity), dtype=np.float32)
        self.n_tiled = 0
        self.n_staged = 0
        self.seen = 0  # raw samples consumed so far
        self.filled = 0  # rows taken so far (tiled, staged or written)

    def add(self, time_ms: np.ndarray, chunk: np.ndarray) -> None:
        """Take the kept rows of ``chunk`` (steps × nodes × lanes), whose first row is raw sample ``seen``."""
        first = first_kept_row(self.seen, self.skip, self.factor)
        copied = copy_decimated_rows(chunk, first, self.factor, self.columns, self.tile, self.n_tiled)
        self.all_time[self.filled : self.filled + copied] = time_ms[first :: self.factor]
        self.n_tiled += copied
        self.filled += copied
        self.seen += len(time_ms)
        if self.n_tiled >= self.TILE_ROWS:
            self._stage_tile()
            if self.n_staged >= self.ROWS_PER_WRITE:
                self._write_staged()

    def _stage_tile(self) -> None:
        append_rows(self.tile, self.n_tiled, self.staged, self.n_staged)
        self.n_staged += self.n_tiled
        self.n_tiled = 0

    def _write_staged(self) -> None:
        first_row = self.filled - self.n_tiled - self.n_staged
        for lane, (target, file, offsets) in enumerate(self.files):
            with naming_path(target):
                for c in range(len(self.columns)):
                    values = self.staged[lane, c, : self.n_staged]
                    write_column_run(file.fileno(), offsets["all_data"], self.n_rows, c, first_row, values)
        self.n_staged = 0

    def finish(self) -> None:
        """Write the last rows and every file's ``all_time``, and make them durable before the renames: the
        space was allocated up front, so after a power loss a file whose rows never reached the disk would read
        as zeros, not as a broken file."""
        if self.filled != self.n_rows:
            raise RuntimeError(f"decimation produced {self.filled} rows, expected {self.n_rows}")
        self._stage_tile()
        self._write_staged()
        for target, file, offsets in self.files:
            with naming_path(target):
                write_column_run(file.fileno(), offsets["all_time"], self.n_rows, 0, 0, self.all_time)
                os.fsync(file.fileno())


def _validate(
    connectivity_zip: Path,
    regions: Sequence[int],
    params: SimulationParams,
    engine: str,
    raw_format: str,
    precision: str,
    threads: int,
) -> tuple[list[int], Connectivity]:
    """Every argument check, before anything is written; returns the regions as ints and the connectivity."""
    if not isinstance(params, SimulationParams):
        raise SimulationParamsError(f"params must be a SimulationParams, got {type(params).__name__}")
    params.validate()
    if isinstance(regions, (int, np.integer)) or not isinstance(regions, Sequence):
        raise SimulationParamsError(f"regions must be a sequence of region ids, got {regions!r}")
    checked = [check_region(r, params.n_fs_regions) for r in regions]
    if not checked:
        raise SimulationParamsError("regions is empty: expected at least one region id")
    if len(set(checked)) != len(checked):
        raise SimulationParamsError(f"regions {list(regions)} has duplicates")
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is invalid: expected one of {ENGINES}")
    if raw_format not in RAW_FORMATS:
        raise ValueError(f"raw_format {raw_format!r} is invalid: expected one of {RAW_FORMATS}")
    if precision not in ENGINE_PRECISIONS:
        raise ValueError(f"precision {precision!r} is invalid: expected one of {ENGINE_PRECISIONS}")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads={threads!r} is invalid: expected an integer ≥ 1")
    connectivity = load_connectivity(connectivity_zip)
    n = connectivity.n_nodes
    needed = max(int(FS_TO_TVB.max()), params.n_fs_regions - 1) + 1
    if n < needed:
        raise SimulationParamsError(
            f"connectivity {connectivity_zip} has {n} nodes, expected ≥ {needed} (the fs → TVB mapping of "
            f"{params.n_fs_regions} regions uses TVB nodes up to {needed - 1})"
        )
    return checked, connectivity


class _LaneOutput:
    """What one simulation (region r, iteration m) accumulates besides its compact rows: the current segment of
    the original format, the peak."""

    def __init__(self, region: int, iteration: int, params: SimulationParams, n: int, fmt: str):
        self.region, self.iteration = region, iteration
        self.segment = (
            np.empty((params.steps_per_segment, n), dtype=np.float32) if fmt == "original" else None
        )
        self.peak = 0.0


def _track(
    outputs: list[_LaneOutput],
    results: dict[int, RegionSimulationResult],
    params: SimulationParams,
    k: int,
    first: int,
    time_ms: np.ndarray,
    chunk: np.ndarray,
) -> None:
    """Peak |y1 − y2| of every lane over the rows the extraction reads (after the transient, every
    ``downsample_factor``-th), and the previews, from rows ``first ..`` of segment k (``chunk``: steps × nodes ×
    lanes)."""
    start = k * params.steps_per_segment + first  # global index of chunk[0]
    after = max(0, params.transient_samples - start)
    if after >= len(time_ms):
        return
    peaks = np.array([out.peak for out in outputs])
    kept = first_kept_row(start, params.transient_samples, params.downsample_factor)
    update_lane_peaks(chunk, kept, params.downsample_factor, peaks)
    for lane, out in enumerate(outputs):
        out.peak = float(peaks[lane])
        if out.iteration == params.iterations[0]:
            _preview(results[out.region], params, k, after, time_ms, chunk[:, :, lane])


def _preview(
    result: RegionSimulationResult,
    params: SimulationParams,
    k: int,
    after: int,
    time_ms: np.ndarray,
    data: np.ndarray,
) -> None:
    """What simulate_region always showed: iteration ``iterations[0]``, the excitable node, from the first sample
    after the transient for PREVIEW_MS, cut at the end of that sample's segment."""
    preview_segment = params.transient_samples // params.steps_per_segment
    n_preview = round(PREVIEW_MS / params.dt)
    have = 0 if result.preview_mv is None else len(result.preview_mv)
    if k != preview_segment or have >= n_preview:
        return
    piece_t = time_ms[after : after + n_preview - have]
    piece_y = data[after : after + n_preview - have, result.excitable_tvb_node].astype(np.float64)
    if result.preview_mv is None:
        result.preview_time_ms, result.preview_mv = piece_t.copy(), piece_y
    else:
        result.preview_time_ms = np.concatenate([result.preview_time_ms, piece_t])
        result.preview_mv = np.concatenate([result.preview_mv, piece_y])


def _save_segment(out: _LaneOutput, result: RegionSimulationResult, k: int, time_ms, a_per_node) -> None:
    name = segment_file_name(out.iteration, out.region, k)
    result.files[name] = _savemat_atomic(
        Path(result.out_dir) / name, {"time": time_ms, "data": out.segment, "A": a_per_node}
    )


def _write_marker(result: RegionSimulationResult, params: SimulationParams) -> None:
    marker = {
        "region": result.region,
        "complete": True,
        "engine": result.engine,
        "precision": result.precision,
        "raw_format": result.raw_format,
        "params": params.to_dict(),
        "excitable_tvb_node": result.excitable_tvb_node,
        "mapping": result.mapping,
        "fs_to_tvb_remapped": {
            str(c): int(FS_TO_TVB[c]) for c in np.flatnonzero(np.arange(len(FS_TO_TVB)) != FS_TO_TVB)
        },
        "files": [{"name": k, "bytes": v} for k, v in result.files.items()],
        "seeds": {str(k): v for k, v in result.seeds.items()},
        "peak_abs_after_transient": {str(k): v for k, v in result.peak_abs_after_transient.items()},
        "lanes": result.lanes,
        "threads": result.threads,
        "ms_per_step": result.ms_per_step,
        "wall_time_s": result.wall_time_s,
    }
    write_json_atomic(Path(result.out_dir) / COMPLETE_MARKER, marker)


#: on_chunk(region, iteration, segment, pct of the region) after each engine chunk
_ChunkCallback = Callable[[int, int, int, float], None]


def _run_batch(
    sim,
    outputs: list[_LaneOutput],
    params: SimulationParams,
    results: dict[int, RegionSimulationResult],
    a_vectors: dict[int, np.ndarray],
    on_chunk: _ChunkCallback | None,
) -> float:
    """Advance ``sim`` (its lanes = ``outputs``) through all segments, feeding each lane's output; engine seconds.

    Every engine fills (steps, n, lanes) float32 chunks (the tvb engine: one lane, one segment per call)."""
    n = sim.n_nodes
    steps_per_segment = params.steps_per_segment
    if sim.engine == "fast":  # whole blocks of steps per call: a partial block costs a pass over the edges
        chunk = CHUNK_BYTES // (4 * n * len(outputs)) // sim.block * sim.block
        chunk = min(max(chunk, sim.block), steps_per_segment)
    else:
        chunk = steps_per_segment
    buffer = np.empty((chunk, n, len(outputs)), dtype=np.float32)
    engine_time = 0.0
    done = 0
    with contextlib.ExitStack() as stack:
        compact = None
        if outputs[0].segment is None:
            targets = [Path(results[out.region].out_dir) / compact_file_name(out.iteration, out.region) for out in outputs]
            compact = _CompactFiles(params, FS_TO_TVB[: params.n_fs_regions], targets, chunk, stack)
        for k in range(params.n_segments):
            time_ms = np.empty(steps_per_segment)
            for lo in range(0, steps_per_segment, chunk):
                hi = min(lo + chunk, steps_per_segment)
                view = buffer[: hi - lo]
                t0 = time.perf_counter()
                t_chunk, _ = sim.run(hi - lo, out=view)
                engine_time += time.perf_counter() - t0
                time_ms[lo:hi] = t_chunk
                _track(outputs, results, params, k, lo, t_chunk, view)
                if compact is not None:
                    compact.add(t_chunk, view)
                else:
                    for lane, out in enumerate(outputs):
                        out.segment[lo:hi] = view[:, :, lane]
                done += hi - lo
                if on_chunk is not None:
                    pct = 100.0 * done / params.total_steps
                    for out in outputs:
                        on_chunk(out.region, out.iteration, k, pct)
            for out in outputs:
                if out.segment is not None:
                    _save_segment(out, results[out.region], k, time_ms, a_vectors[out.region])
        if compact is not None:
            compact.finish()
    for out in outputs:  # the compact files are in place now
        result = results[out.region]
        result.peak_abs_after_transient[out.iteration] = out.peak
        if compact is not None:
            name = compact_file_name(out.iteration, out.region)
            result.files[name] = (Path(result.out_dir) / name).stat().st_size
    return engine_time


class _TvbLane:
    """Stock tvb-library simulator behind the lanes interface (one lane)."""

    engine = "tvb"

    def __init__(self, tvb_sim) -> None:
        self._sim = tvb_sim
        self.n_nodes = tvb_sim.n_nodes

    def run(self, n_steps: int, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        time_ms, _ = self._sim.run(n_steps, out=out[:, :, 0])
        return time_ms, out


def _simulate(
    connectivity_zip: Path,
    regions: Sequence[int],
    params: SimulationParams,
    out_dirs: Mapping[int, Path],
    engine: str,
    raw_format: str,
    precision: str,
    threads: int,
    on_chunk: _ChunkCallback | None,
) -> dict[int, RegionSimulationResult]:
    """The work of :func:`simulate_regions` (see there)."""
    t_start = time.perf_counter()
    connectivity_zip = Path(connectivity_zip)
    regions, connectivity = _validate(
        connectivity_zip, regions, params, engine, raw_format, precision, threads
    )
    if not isinstance(out_dirs, Mapping) or any(r not in out_dirs for r in regions):
        raise ValueError(f"out_dirs must map every region of {regions} to a directory")
    n = connectivity.n_nodes
    n_lanes = len(regions) * len(params.iterations)
    results: dict[int, RegionSimulationResult] = {}
    a_vectors: dict[int, np.ndarray] = {}
    for r in regions:
        out_dir = Path(out_dirs[r])
        out_dir.mkdir(parents=True, exist_ok=True)
        _clear_previous_output(out_dir, r)
        excitable = excitable_tvb_node(r, params)
        a_vectors[r] = a_vector(n, excitable, params)
        results[r] = RegionSimulationResult(
            region=r,
            out_dir=str(out_dir),
            engine=engine,
            raw_format=raw_format,
            excitable_tvb_node=excitable,
            mapping="faithful (TVB node r)" if params.faithful_remap else "fs_to_tvb (TVB node FS_TO_TVB[r])",
            precision=precision if engine == "fast" else None,
            lanes=n_lanes if engine == "fast" else 1,
            threads=int(threads) if engine == "fast" else 1,
            seeds={m: iteration_seed(params, r, m) for m in params.iterations},
        )

    if engine == "fast":
        from .lanes import LanesSimulator

        # lane order: region, then iteration; a lane's output does not depend on the others
        pairs = [(r, m) for r in regions for m in params.iterations]
        lanes = [
            Lane(a_vectors[r], params.mu[m], noise_nsig(params, m), results[r].seeds[m]) for r, m in pairs
        ]
        sim = LanesSimulator(
            connectivity,
            lanes,
            dt=params.dt,
            conduction_speed=params.conduction_speed,
            constants=_constants(params),
            precision=precision,
            threads=threads,
        )
        sim.engine = "fast"
        outputs = [_LaneOutput(r, m, params, n, raw_format) for r, m in pairs]
        engine_time = _run_batch(sim, outputs, params, results, a_vectors, on_chunk)
        for r in regions:  # each region's share of the batch
            results[r].engine_time_s = engine_time * len(params.iterations) / n_lanes
        del sim
    else:
        for r in regions:
            for m in params.iterations:
                tvb = _make_tvb_engine(
                    connectivity_zip,
                    a_vectors[r],
                    params.mu[m],
                    noise_nsig(params, m),
                    params,
                    results[r].seeds[m],
                )
                out = _LaneOutput(r, m, params, n, raw_format)
                results[r].engine_time_s += _run_batch(
                    _TvbLane(tvb), [out], params, results, a_vectors, on_chunk
                )
    for r in regions:
        result = results[r]
        result.steps = params.total_steps * len(params.iterations)
        result.files = dict(sorted(result.files.items(), key=lambda kv: _file_order(kv[0])))
        result.wall_time_s = time.perf_counter() - t_start
        _write_marker(result, params)
    return results


def _file_order(name: str) -> tuple[int, int]:
    """simulate_region's file order: by iteration, then segment."""
    match = re.match(r"mean_iter_(\d+)_a_iter_\d+_(\d+|ds)\.mat$", name)
    return (int(match[1]), -1 if match[2] == "ds" else int(match[2])) if match else (1 << 30, 0)


def simulate_regions(
    connectivity_zip: Path,
    regions: Sequence[int],
    params: SimulationParams,
    out_dirs: Mapping[int, Path],
    *,
    engine: str = "fast",
    raw_format: str = "compact",
    precision: str = DEFAULT_PRECISION,
    threads: int = 1,
    progress: RegionsProgressCallback | None = None,
) -> dict[int, RegionSimulationResult]:
    """Simulate every iteration of every region in ``regions``; write each region's ``out_dirs[r]``.

    Engine "fast": all (region, iteration) simulations are the lanes of one lock-step batch
    (:class:`.lanes.LanesSimulator`, ``precision`` "fast" or "faithful", ``threads`` numba threads); each
    lane's output is bitwise what it would be alone. Engine "tvb": stock tvb-library, one simulation after
    the other. Each directory gets exactly what :func:`simulate_region` writes (module docstring; a previous
    run's partial output is removed first; ``_complete.json`` last). ``progress(region, pct)`` is called after
    each engine chunk with the percentage of that region's simulated time (0..100). Memory: see the module
    docstring (compact: a few tens of MB per lane). Bad input raises
    :class:`SimulationParamsError` / ``ConnectivityError`` / ``ValueError`` before anything is written.
    """
    seen: dict[int, float] = {}

    def on_chunk(region: int, iteration: int, segment: int, pct: float) -> None:
        if progress is not None and seen.get(region) != pct:  # once per region and chunk
            seen[region] = pct
            progress(region, pct)

    return _simulate(
        connectivity_zip, regions, params, out_dirs, engine, raw_format, precision, threads, on_chunk
    )


def simulate_region(
    connectivity_zip: Path,
    region: int,
    params: SimulationParams,
    out_dir: Path,
    *,
    engine: str = "fast",
    raw_format: str = "compact",
    precision: str = DEFAULT_PRECISION,
    threads: int = 1,
    progress: ProgressCallback | None = None,
) -> RegionSimulationResult:
    """Simulate cortical region ``region`` for every iteration of ``params`` and write ``out_dir`` (module doc).

    The one-region call of :func:`simulate_regions` (engine "fast": the iterations are the lanes of one batch).
    ``progress(m, k, pct)`` is called after each chunk with the iteration, the segment and the percentage of the
    region's simulated time (0..100); with lanes all iterations advance together, so it is called for each
    iteration with the same pct. Raises :class:`SimulationParamsError` / ``ConnectivityError`` / ``ValueError``
    with a clear message on bad input, before anything is written.
    """
    on_chunk = None if progress is None else (lambda r, m, k, pct: progress(m, k, pct))
    results = _simulate(
        connectivity_zip,
        [region],
        params,
        {region: out_dir},
        engine,
        raw_format,
        precision,
        threads,
        on_chunk,
    )
    return next(iter(results.values()))


def is_complete(out_dir: Path) -> bool:
    """True if ``out_dir`` holds a ``_complete.json`` written by :func:`simulate_region`."""
    return (Path(out_dir) / COMPLETE_MARKER).is_file()
