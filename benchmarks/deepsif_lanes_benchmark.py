"""Benchmark: lock-step lanes vs the previous single-lane engine vs stock tvb-library (connectivity_998, dt 0.5).

Prints, in one run (wrap it in ``flock /tmp/neuro-bench.lock``; the load average is printed before and after):

* CPU µs for one step's legacy normal draws: NumPy's ``RandomState.normal`` vs the compiled replay;
* CPU ms per simulated step of ONE simulation (batch time / K) for K = 1, 3, 6, 12 lanes, precision "fast"
  (default) and "faithful", beside stock tvb-library and the previous engine (commit 6f7d639's
  ``FastJansenRitSimulator``, loaded from git into a temporary module), with ratios; one core pinned;
* threads = 2 for one batch (a child process, not pinned): wall ms per step per lane;
* on an AVX-512 machine, the fast K = 12 step compiled for AVX2 (four values per vector, a child process with
  ``NUMBA_CPU_NAME=haswell``) beside this build's eight per vector, with the output digests (they must agree);
* fidelity of the default engine vs stock tvb-library over one whole 10-s segment (``--segment-steps``):
  |Δ(y1 − y2)| vs 1e-5·|y| + 1e-4 mV for every sample after the first 1,000;
* ``--full-region``: one whole region in the original configuration (3 × 20 × 10 s) through simulate_region
  (compact raw output, new default) in a child process — wall time, peak RSS, RSS per lane — and its compact
  output vs the previous engine's decimated output (max |Δ| / max |y| per iteration).

    flock /tmp/neuro-bench.lock .venv/bin/python benchmarks/deepsif_lanes_benchmark.py [--full-region]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "2")  # the threads=2 child needs two; timings pin one core

import argparse
import atexit
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_machine import load_average, pin_one_core  # noqa: E402

DEFAULT_ZIP = REPO / "data" / "deepsif-anatomy" / "connectivity_998.zip"
OLD_ENGINE_COMMIT = "6f7d639"  # the last single-lane engine (before the lanes)
LANE_COUNTS = (1, 3, 6, 12)


def _old_engine_class():
    """commit 6f7d639's FastJansenRitSimulator, from git, in a temporary module (absolute imports)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{OLD_ENGINE_COMMIT}:deepsif_assets/simulation/engine.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    source = source.replace("from .connectivity", "from deepsif_assets.simulation.connectivity")
    source = source.replace("from .legacy_rng", "from deepsif_assets.simulation.legacy_rng")
    folder = Path(tempfile.mkdtemp(prefix="deepsif_old_engine_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # with numba's cache files beside the module
    path = folder / "old_deepsif_engine.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_deepsif_engine", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_deepsif_engine"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.FastJansenRitSimulator


def _lanes(k: int, params):
    from deepsif_assets.simulation.lanes import Lane
    from deepsif_assets.simulation.params import a_vector, excitable_tvb_node, iteration_seed, noise_nsig

    # k/3 regions × 3 iterations (a region's iterations are neighbouring lanes, as simulate_regions batches them)
    out = []
    for i in range(k):
        region, m = 37 * (i // 3), i % 3
        a = a_vector(998, excitable_tvb_node(region, params), params)
        out.append(Lane(a, params.mu[m], noise_nsig(params, m), iteration_seed(params, region, m)))
    return out


def _best_cpu_ms_per_step(sim, steps: int, repeats: int) -> float:
    sim.run(8)  # compiled / warm
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        sim.run(steps)
        best = min(best, time.process_time() - t0)
    return 1e3 * best / steps


def timings(zip_path: Path, steps: int, tvb_steps: int, repeats: int) -> dict:
    from deepsif_assets.simulation.connectivity import load_connectivity
    from deepsif_assets.simulation.lanes import LanesSimulator
    from deepsif_assets.simulation.params import SimulationParams
    from deepsif_assets.simulation.tvb_reference import TvbJansenRitSimulator

    params = SimulationParams()
    con = load_connectivity(zip_path)
    lane = _lanes(1, params)[0]
    out: dict = {"lanes": {}}
    old = _old_engine_class()(con, lane.a_per_node, lane.mu, lane.nsig_y4, dt=params.dt, seed=lane.seed)
    out["old_ms"] = _best_cpu_ms_per_step(old, steps, repeats)
    tvb = TvbJansenRitSimulator(
        zip_path, lane.a_per_node, lane.mu, lane.nsig_y4, dt=params.dt, seed=lane.seed
    )
    tvb.run(20)  # tvb's numba dfun compiles in the first steps
    out["tvb_ms"] = _best_cpu_ms_per_step(tvb, tvb_steps, 1)
    for precision in ("fast", "faithful"):
        for k in LANE_COUNTS:
            sim = LanesSimulator(con, _lanes(k, params), dt=params.dt, precision=precision)
            out["lanes"][(precision, k)] = _best_cpu_ms_per_step(sim, steps, repeats) / k
    return out


def replay_timings(steps: int, repeats: int, n: int = 998) -> dict:
    """CPU µs per step for one step's legacy draws, normal(size=(6, n, 1)): NumPy vs the compiled replay."""
    from numba import njit

    from deepsif_assets.simulation.legacy_rng import legacy_normals, state_from_random_state

    @njit(cache=False)
    def replay(key, pos, gauss, out, n_steps):
        for _ in range(n_steps):
            legacy_normals(key, pos, gauss, 6 * n, 4 * n, 5 * n, out)

    rs = np.random.RandomState(42)
    key, pos, gauss = state_from_random_state(rs)
    row4 = np.empty(n)
    replay(key, pos, gauss, row4, 1)  # compiled
    best = {"numpy_us": float("inf"), "replay_us": float("inf")}
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(steps):
            rs.normal(size=(6, n, 1))
        best["numpy_us"] = min(best["numpy_us"], 1e6 * (time.process_time() - t0) / steps)
        t0 = time.process_time()
        replay(key, pos, gauss, row4, steps)
        best["replay_us"] = min(best["replay_us"], 1e6 * (time.process_time() - t0) / steps)
    return best


def threads_child(zip_path: Path, steps: int, repeats: int) -> dict:
    """Wall ms per step per lane with threads = 1 and 2 (no pinning), K = 3 and 12."""
    from deepsif_assets.simulation.connectivity import load_connectivity
    from deepsif_assets.simulation.lanes import LanesSimulator
    from deepsif_assets.simulation.params import SimulationParams

    params = SimulationParams()
    con = load_connectivity(zip_path)
    result = {}
    for k in (1, 3, 12):
        for threads in (1, 2):
            sim = LanesSimulator(con, _lanes(k, params), dt=params.dt, threads=threads)
            sim.run(8)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                sim.run(steps)
                best = min(best, time.perf_counter() - t0)
            result[f"{k},{threads}"] = 1e3 * best / steps / k
    return result


def width_child(zip_path: Path, steps: int, repeats: int) -> dict:
    """Vector width of the node update, CPU ms per step per lane of the fast K = 12 batch (one core) and the
    sha256 of its output."""
    import hashlib

    from deepsif_assets.simulation.connectivity import load_connectivity
    from deepsif_assets.simulation.lanes import VECTOR_WIDTH, LanesSimulator
    from deepsif_assets.simulation.params import SimulationParams

    pin_one_core()
    params = SimulationParams()
    sim = LanesSimulator(load_connectivity(zip_path), _lanes(12, params), dt=params.dt)
    digest = hashlib.sha256(sim.run(steps)[1].tobytes()).hexdigest()[:16]
    return {"width": VECTOR_WIDTH, "ms": _best_cpu_ms_per_step(sim, steps, repeats) / 12, "digest": digest}


def segment_fidelity(zip_path: Path, steps: int, skip: int) -> dict:
    """The default engine vs stock tvb-library over ``steps`` steps (same seed 42), samples after ``skip``."""
    from deepsif_assets.simulation.connectivity import load_connectivity
    from deepsif_assets.simulation.engine import PARITY_ATOL, PARITY_RTOL
    from deepsif_assets.simulation.lanes import LanesSimulator
    from deepsif_assets.simulation.params import SimulationParams
    from deepsif_assets.simulation.tvb_reference import TvbJansenRitSimulator

    params = SimulationParams()
    lanes = _lanes(3, params)  # one region's three iterations, one batch
    sim = LanesSimulator(load_connectivity(zip_path), lanes, dt=params.dt)
    _, y = sim.run(steps)
    out = {}
    for i, lane in enumerate(lanes):
        tvb = TvbJansenRitSimulator(
            zip_path, lane.a_per_node, lane.mu, lane.nsig_y4, dt=params.dt, seed=lane.seed
        )
        _, y_tvb = tvb.run(steps)
        ref = y_tvb[skip:].astype(np.float64)
        diff = np.abs(y[skip:, :, i] - ref)
        bound = PARITY_RTOL * np.abs(ref) + PARITY_ATOL
        out[i] = {
            "max_abs_diff_mV": float(diff.max()),
            "max_diff_over_bound": float((diff / bound).max()),
            "within_bound": bool(np.all(diff <= bound)),
            "bit_identical": float(np.mean(y[skip:, :, i] == y_tvb[skip:])),
            "max_abs_y_mV": float(np.abs(ref).max()),
        }
        if len(lanes) > 1 and i == 0 and steps > 4000:
            break  # the tvb reference costs ≈ 12 ms/step: one lane of the batch for a whole segment
    return out


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (unlike ru_maxrss, VmHWM is not inherited across fork + exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def full_region_child(zip_path: Path, region: int, out_root: Path) -> dict:
    from deepsif_assets.simulation import SimulationParams, simulate_region
    from deepsif_assets.simulation.connectivity import load_connectivity
    from deepsif_assets.simulation.lanes import Lane, LanesSimulator

    pin_one_core()
    # compiled kernels loaded (a 1-step run) before the baseline, so the difference is the region's data
    LanesSimulator(load_connectivity(zip_path), [Lane(np.full(998, 3.25), 0.08, 1e-4, 1)], dt=0.5).run(1)
    base_rss = _status_mb("VmRSS")
    result = simulate_region(zip_path, region, SimulationParams(), out_root / f"a{region}")
    meta = result.to_metadata()
    meta["peak_rss_mb"] = _status_mb("VmHWM")
    meta["base_rss_mb"] = base_rss
    return meta


def old_engine_region(zip_path: Path, region: int, out_dir: Path) -> dict:
    """The previous engine through the same decimation, compared with the new default's compact files."""
    import scipy.io

    from deepsif_assets.simulation.chunks import first_kept_row
    from deepsif_assets.simulation.connectivity import load_connectivity
    from deepsif_assets.simulation.params import (
        FS_TO_TVB,
        SimulationParams,
        a_vector,
        excitable_tvb_node,
        iteration_seed,
        noise_nsig,
    )
    from deepsif_assets.simulation.region import compact_file_name

    params = SimulationParams()
    old_cls = _old_engine_class()
    con = load_connectivity(zip_path)
    a = a_vector(998, excitable_tvb_node(region, params), params)
    columns = FS_TO_TVB[: params.n_fs_regions]
    out = {}
    for m in params.iterations:
        sim = old_cls(
            con, a, params.mu[m], noise_nsig(params, m), dt=params.dt, seed=iteration_seed(params, region, m)
        )
        kept, seen = [], 0  # the compact format's rows (see simulation/region.py), taken chunk by chunk
        t0 = time.process_time()
        for _ in range(params.n_segments):
            for _ in range(params.steps_per_segment // 2000):
                t, y = sim.run(2000)
                first = first_kept_row(seen, params.transient_samples, params.downsample_factor)
                kept.append(y[first :: params.downsample_factor][:, columns])
                seen += len(t)
        cpu = time.process_time() - t0
        new = scipy.io.loadmat(out_dir / compact_file_name(m, region))["all_data"].astype(np.float64)
        old = np.concatenate(kept).astype(np.float64)
        out[m] = {
            "rel_max_diff": float(np.abs(new - old).max() / np.abs(old).max()),
            "max_abs_diff_mV": float(np.abs(new - old).max()),
            "max_abs_y_mV": float(np.abs(old).max()),
            "bit_identical": float(np.mean(new == old)),
            "old_engine_cpu_s": cpu,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connectivity", type=Path, default=DEFAULT_ZIP)
    parser.add_argument(
        "--steps", type=int, default=1000, help="timed steps per measurement (best of --repeats)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tvb-steps", type=int, default=200, help="timed stock tvb-library steps")
    parser.add_argument(
        "--segment-steps", type=int, default=20_000, help="fidelity span vs tvb (10 s = 20,000)"
    )
    parser.add_argument("--skip", type=int, default=1000, help="fidelity: samples not compared at the start")
    parser.add_argument("--full-region", action="store_true", help="also one whole original-config region")
    parser.add_argument("--no-timings", action="store_true", help="skip the per-step timings (fidelity only)")
    parser.add_argument("--no-fidelity", action="store_true", help="skip the whole-segment tvb comparison")
    parser.add_argument("--region", type=int, default=0)
    parser.add_argument("--child", choices=["threads", "region", "width"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "threads":
        print(json.dumps(threads_child(args.connectivity, args.steps, args.repeats)))
        return 0
    if args.child == "width":
        print(json.dumps(width_child(args.connectivity, args.steps, args.repeats)))
        return 0
    if args.child == "region":
        print(json.dumps(full_region_child(args.connectivity, args.region, args.out)))
        return 0

    print(f"DeepSIF lanes benchmark: {args.connectivity.name}, dt 0.5 ms; load average before {load_average()}")
    if not args.no_timings:
        _timing_report(args)
    if not args.no_fidelity:
        _fidelity_report(args)
    if args.full_region:
        _region_report(args)
    print(f"load average at the end {load_average()}")
    return 0


def _timing_report(args: argparse.Namespace) -> None:
    pinned = pin_one_core()
    r = timings(args.connectivity, args.steps, args.tvb_steps, args.repeats)
    print(f"CPU ms per simulated step of ONE simulation, one core ({pinned}), best of {args.repeats}:")
    print(f"  stock tvb-library            : {r['tvb_ms']:9.4f}")
    print(
        f"  previous engine (6f7d639)    : {r['old_ms']:9.4f}   (tvb / previous = {r['tvb_ms'] / r['old_ms']:.0f}x)"
    )
    for (precision, k), ms in r["lanes"].items():
        print(
            f"  lanes {precision:8s} K={k:2d}        : {ms:9.4f}   vs previous {r['old_ms'] / ms:5.2f}x, "
            f"vs tvb {r['tvb_ms'] / ms:6.0f}x"
        )
    replay = replay_timings(args.steps, args.repeats)
    print(
        f"legacy noise of one step, normal(size=(6, 998, 1)), CPU µs: NumPy {replay['numpy_us']:.1f}, compiled "
        f"replay {replay['replay_us']:.1f} ({replay['numpy_us'] / replay['replay_us']:.1f}x; shared by the lanes "
        "of one seed)"
    )
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "threads",
            "--steps",
            str(args.steps),
            "--repeats",
            str(args.repeats),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    threads = json.loads(child.stdout.strip().splitlines()[-1])
    print("wall ms per step per lane, fast, threads 1 → 2 (one batch, not pinned):")
    for k in (1, 3, 12):
        one, two = threads[f"{k},1"], threads[f"{k},2"]
        print(f"  K={k:2d}: {one:.4f} → {two:.4f} ({one / two:.2f}x)")
    _width_report(args)
    print(f"load average after timings {load_average()}")


def _width_report(args: argparse.Namespace) -> None:
    from deepsif_assets.simulation.lanes import AVX2_NUMBA_TARGET, VECTOR_WIDTH

    if VECTOR_WIDTH == 4:
        print("node update: four values per vector (no AVX-512 here), nothing to compare")
        return
    runs = {}
    for name, env in (("AVX2 build", AVX2_NUMBA_TARGET), ("this build", {})):
        command = [sys.executable, __file__, "--child", "width", "--steps", str(args.steps)]
        command += ["--repeats", str(args.repeats)]
        child = subprocess.run(
            command, env={**os.environ, **env}, check=True, capture_output=True, text=True
        )
        runs[name] = json.loads(child.stdout.strip().splitlines()[-1])
    avx2, this = runs["AVX2 build"], runs["this build"]
    same = "identical outputs" if avx2["digest"] == this["digest"] else "OUTPUTS DIFFER"
    print(
        f"fast K=12, CPU ms per step per lane, one core: {avx2['width']} values per vector {avx2['ms']:.4f} → "
        f"{this['width']} per vector {this['ms']:.4f} ({avx2['ms'] / this['ms']:.2f}x; {same})"
    )


def _fidelity_report(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    fid = segment_fidelity(args.connectivity, args.segment_steps, args.skip)
    for lane, f in fid.items():
        print(
            f"fidelity vs stock tvb, lane {lane} of a 3-lane batch, {args.segment_steps} steps, after sample "
            f"{args.skip}: max |Δ| {f['max_abs_diff_mV']:.3g} mV (|y| ≤ {f['max_abs_y_mV']:.3g}), "
            f"max |Δ|/(1e-5|y| + 1e-4) = {f['max_diff_over_bound']:.3f} -> "
            f"{'OK' if f['within_bound'] else 'EXCEEDED'}; bit-identical {100 * f['bit_identical']:.2f} % "
            f"({time.perf_counter() - t0:.0f} s)"
        )


def _region_report(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="deepsif_lanes_bench_") as tmp:
        cmd = [sys.executable, __file__, "--child", "region", "--region", str(args.region), "--out", tmp]
        child = subprocess.run(cmd, check=True, capture_output=True, text=True)
        meta = json.loads(child.stdout.strip().splitlines()[-1])
        lanes = meta["lanes"]
        print(
            f"full region {args.region} (3 × 20 × 10 s, compact, precision {meta['precision']}, {lanes} lanes): "
            f"{meta['wall_time_s']:.1f} s wall, engine {meta['engine_time_s']:.1f} s, "
            f"{meta['ms_per_step']:.4f} ms/step/lane; peak RSS {meta['peak_rss_mb']:.0f} MB "
            f"(after imports {meta['base_rss_mb']:.0f} MB: ≈ "
            f"{(meta['peak_rss_mb'] - meta['base_rss_mb']) / lanes:.0f} MB per lane)"
        )
        cmp = old_engine_region(args.connectivity, args.region, Path(tmp) / f"a{args.region}")
        for m, c in cmp.items():
            print(
                f"  iteration {m}: compact output vs previous engine: max|Δ|/max|y| = {c['rel_max_diff']:.3g} "
                f"({c['max_abs_diff_mV']:.3g} mV of {c['max_abs_y_mV']:.3g}; "
                f"{'OK' if c['rel_max_diff'] <= 1e-3 else 'EXCEEDS 1e-3'}), bit-identical "
                f"{100 * c['bit_identical']:.2f} %; previous engine {c['old_engine_cpu_s']:.0f} CPU-s"
            )


if __name__ == "__main__":
    raise SystemExit(main())
