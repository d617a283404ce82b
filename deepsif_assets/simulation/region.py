"""Simulate one cortical region (all iterations) and write its raw files atomically.

Layout of ``out_dir`` (= ``<source>/raw_nmm/a{r}/``):

* ``raw_format="original"``: per iteration m and segment k, ``mean_iter_{m}_a_iter_{r}_{k}.mat`` with ``time``
  float64 (1, T) ms (continuing across segments), ``data`` float32 (T, n_tvb) = y1 − y2, ``A`` float64 (1, n_tvb).
* ``raw_format="compact"`` (default): per iteration one ``mean_iter_{m}_a_iter_{r}_ds.mat`` with ``all_data`` single
  (n_ds, 994) and ``all_time`` double (n_ds, 1): exactly the array ``process_raw_nmm.m`` builds (and caches as
  ``_ds.mat``) from the raw segments in numeric order — concatenate, drop the first ``transient_samples`` rows, keep
  every ``downsample_factor``-th row starting with the first, take fs column c from TVB node ``FS_TO_TVB[c]``.
  It is built while simulating; only the decimated output is held in memory.
* ``_complete.json`` is written last (atomically) after every iteration succeeded: params, format, files and sizes,
  seeds. Its presence means "raw complete".

Crash recovery: :func:`simulate_region` first deletes ``_complete.json`` and then every file it may have written
before (``mean_iter_*_a_iter_{r}_*.mat`` and leftover temp files of the atomic writes) in ``out_dir``, so a run
killed half-way (no ``_complete.json``) is simply redone from scratch; other files are left alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from neuro_core.files import atomic_path, write_json_atomic

from .connectivity import Connectivity, load_connectivity
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
#: steps per engine call in the fast engine (progress granularity; results do not depend on it)
FAST_CHUNK_STEPS = 2000

ProgressCallback = Callable[[int, int, float], None]


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
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    seeds: dict[int, int] = field(default_factory=dict)  # iteration -> RandomState seed
    peak_abs_after_transient: dict[int, float] = field(default_factory=dict)  # iteration -> max |y1 - y2|
    steps: int = 0
    wall_time_s: float = 0.0
    engine_time_s: float = 0.0
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


def _make_engine(
    engine: str,
    connectivity_zip: Path,
    connectivity: Connectivity,
    a_per_node: np.ndarray,
    mu: float,
    nsig: float,
    params: SimulationParams,
    seed: int,
):
    kwargs = dict(
        dt=params.dt, seed=seed, conduction_speed=params.conduction_speed, constants=_constants(params)
    )
    if engine == "fast":
        from .engine import FastJansenRitSimulator

        return FastJansenRitSimulator(connectivity, a_per_node, mu, nsig, **kwargs)
    from .tvb_reference import TvbJansenRitSimulator

    return TvbJansenRitSimulator(connectivity_zip, a_per_node, mu, nsig, **kwargs)


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
        scipy.io.savemat(f, variables, format="5", oned_as="row", do_compression=False)
    return target.stat().st_size


class _Decimator:
    """Streams raw y1 − y2 segments into the compact ``all_data``/``all_time`` arrays (see module docstring)."""

    def __init__(self, params: SimulationParams, columns: np.ndarray) -> None:
        self.skip = params.transient_samples
        self.factor = params.downsample_factor
        self.columns = columns
        self.all_data = np.empty((params.n_decimated, len(columns)), dtype=np.float32)
        self.all_time = np.empty((params.n_decimated, 1), dtype=np.float64)
        self.seen = 0  # raw samples consumed so far
        self.filled = 0

    def add(self, time_ms: np.ndarray, data: np.ndarray) -> None:
        g = self.seen + np.arange(len(time_ms))
        keep = (g >= self.skip) & ((g - self.skip) % self.factor == 0)
        rows = np.flatnonzero(keep)
        self.all_data[self.filled : self.filled + len(rows)] = data[rows][:, self.columns]
        self.all_time[self.filled : self.filled + len(rows), 0] = time_ms[rows]
        self.filled += len(rows)
        self.seen += len(time_ms)


def simulate_region(
    connectivity_zip: Path,
    region: int,
    params: SimulationParams,
    out_dir: Path,
    *,
    engine: str = "fast",
    raw_format: str = "compact",
    progress: ProgressCallback | None = None,
) -> RegionSimulationResult:
    """Simulate cortical region ``region`` for every iteration of ``params`` and write ``out_dir`` (see module doc).

    ``progress(m, k, pct)`` is called after each chunk with the iteration, the segment and the percentage of the
    total simulated time (0..100). Raises :class:`SimulationParamsError` / ``ConnectivityError`` / ``ValueError``
    with a clear message on bad input, before anything is written.
    """
    t_start = time.perf_counter()
    if not isinstance(params, SimulationParams):
        raise SimulationParamsError(f"params must be a SimulationParams, got {type(params).__name__}")
    params.validate()
    region = check_region(region, params.n_fs_regions)
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is invalid: expected one of {ENGINES}")
    if raw_format not in RAW_FORMATS:
        raise ValueError(f"raw_format {raw_format!r} is invalid: expected one of {RAW_FORMATS}")
    connectivity_zip = Path(connectivity_zip)
    connectivity = load_connectivity(connectivity_zip)
    n = connectivity.n_nodes
    needed = max(int(FS_TO_TVB.max()), params.n_fs_regions - 1) + 1
    if n < needed:
        raise SimulationParamsError(
            f"connectivity {connectivity_zip} has {n} nodes, expected ≥ {needed} (the fs → TVB mapping of "
            f"{params.n_fs_regions} regions uses TVB nodes up to {needed - 1})"
        )
    excitable = excitable_tvb_node(region, params)
    columns = FS_TO_TVB[: params.n_fs_regions]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous_output(out_dir, region)

    result = RegionSimulationResult(
        region=region,
        out_dir=str(out_dir),
        engine=engine,
        raw_format=raw_format,
        excitable_tvb_node=excitable,
        mapping="faithful (TVB node r)" if params.faithful_remap else "fs_to_tvb (TVB node FS_TO_TVB[r])",
    )
    a_per_node = a_vector(n, excitable, params)
    total_steps_all = params.total_steps * len(params.iterations)
    done_steps = 0
    steps_per_segment = params.steps_per_segment
    for m in params.iterations:
        seed = iteration_seed(params, region, m)
        result.seeds[m] = seed
        sim = _make_engine(
            engine,
            connectivity_zip,
            connectivity,
            a_per_node,
            params.mu[m],
            noise_nsig(params, m),
            params,
            seed,
        )
        decimator = _Decimator(params, columns) if raw_format == "compact" else None
        peak = 0.0
        seg_buffer = np.empty((steps_per_segment, n), dtype=np.float32)
        for k in range(params.n_segments):
            chunk = FAST_CHUNK_STEPS if engine == "fast" else steps_per_segment
            time_ms = np.empty(steps_per_segment)
            for lo in range(0, steps_per_segment, chunk):
                hi = min(lo + chunk, steps_per_segment)
                t0 = time.perf_counter()
                t_chunk, _ = sim.run(hi - lo, out=seg_buffer[lo:hi])
                result.engine_time_s += time.perf_counter() - t0
                time_ms[lo:hi] = t_chunk
                done_steps += hi - lo
                if progress is not None:
                    progress(m, k, 100.0 * done_steps / total_steps_all)
            first_global = k * steps_per_segment
            after = max(0, params.transient_samples - first_global)
            if after < steps_per_segment:
                peak = max(peak, float(np.max(np.abs(seg_buffer[after:]))))
                if result.preview_mv is None:
                    stop = after + round(PREVIEW_MS / params.dt)
                    result.preview_time_ms = time_ms[after:stop].copy()
                    result.preview_mv = seg_buffer[after:stop, excitable].astype(np.float64)
            if decimator is not None:
                decimator.add(time_ms, seg_buffer)
            else:
                name = segment_file_name(m, region, k)
                result.files[name] = _savemat_atomic(
                    out_dir / name, {"time": time_ms, "data": seg_buffer, "A": a_per_node}
                )
        result.steps += params.total_steps
        result.peak_abs_after_transient[m] = peak
        if decimator is not None:
            if decimator.filled != params.n_decimated:
                raise RuntimeError(
                    f"decimation produced {decimator.filled} rows, expected {params.n_decimated}"
                )
            name = compact_file_name(m, region)
            result.files[name] = _savemat_atomic(
                out_dir / name, {"all_data": decimator.all_data, "all_time": decimator.all_time}
            )
        del sim
    result.wall_time_s = time.perf_counter() - t_start
    marker = {
        "region": region,
        "complete": True,
        "engine": engine,
        "raw_format": raw_format,
        "params": params.to_dict(),
        "excitable_tvb_node": excitable,
        "mapping": result.mapping,
        "fs_to_tvb_remapped": {
            str(c): int(FS_TO_TVB[c]) for c in np.flatnonzero(np.arange(len(FS_TO_TVB)) != FS_TO_TVB)
        },
        "files": [{"name": k, "bytes": v} for k, v in result.files.items()],
        "seeds": {str(k): v for k, v in result.seeds.items()},
        "peak_abs_after_transient": {str(k): v for k, v in result.peak_abs_after_transient.items()},
        "ms_per_step": result.ms_per_step,
        "wall_time_s": result.wall_time_s,
    }
    write_json_atomic(out_dir / COMPLETE_MARKER, marker)
    return result


def is_complete(out_dir: Path) -> bool:
    """True if ``out_dir`` holds a ``_complete.json`` written by :func:`simulate_region`."""
    return (Path(out_dir) / COMPLETE_MARKER).is_file()
