"""Benchmark: stock tvb-library vs the fast DeepSIF engine on connectivity_998, one core.

Prints, in one run: ms/step of stock tvb-library and of the fast engine (wall and CPU time), their ratio, and the
max |Δ(y1 − y2)| between the two over the measured span (same seed, same start). Each engine's span is timed in
``--repeats`` equal chunks; besides the overall mean, the best chunk of each (least disturbed by other processes
on a shared machine) and the ratio of the two best chunks are printed. ``--full-region`` additionally
simulates one region in the original configuration (3 × 20 × 10 s, dt 0.5, compact output) with the fast engine
in a child process and reports its wall time, ms/step, output size and peak RSS.

    .venv/bin/python benchmarks/deepsif_engine_benchmark.py [--tvb-steps 1000] [--fast-steps 20000] [--full-region]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, set before numpy/numba load

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_machine import pin_one_core  # noqa: E402

DEFAULT_ZIP = REPO / "data" / "deepsif-anatomy" / "connectivity_998.zip"


def _timed_run(sim, n_steps: int) -> tuple[float, float, np.ndarray]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    _, y = sim.run(n_steps)
    return time.perf_counter() - wall0, time.process_time() - cpu0, y


def _timed_chunks(sim, n_steps: int, repeats: int) -> tuple[float, float, float, float, np.ndarray]:
    """Run ``n_steps`` in ``repeats`` chunks: (total wall, total CPU, best-chunk wall/step, CPU/step, output)."""
    sizes = [n_steps // repeats + (1 if k < n_steps % repeats else 0) for k in range(repeats)]
    walls, cpus, ys = [], [], []
    for size in sizes:
        wall, cpu, y = _timed_run(sim, size)
        walls.append(wall)
        cpus.append(cpu)
        ys.append(y)
    best_wall = min(w / size for w, size in zip(walls, sizes, strict=True))
    best_cpu = min(c / size for c, size in zip(cpus, sizes, strict=True))
    return sum(walls), sum(cpus), best_wall, best_cpu, np.concatenate(ys)


def compare_engines(
    zip_path: Path, dt: float, tvb_steps: int, fast_steps: int, region: int, iteration: int, repeats: int = 3
) -> dict:
    from deepsif_assets.simulation.connectivity import load_connectivity
    from deepsif_assets.simulation.engine import FastJansenRitSimulator
    from deepsif_assets.simulation.params import SimulationParams, a_vector, excitable_tvb_node, noise_nsig
    from deepsif_assets.simulation.tvb_reference import TvbJansenRitSimulator

    params = SimulationParams(dt=dt)
    a_per_node = a_vector(998, excitable_tvb_node(region, params), params)
    args = (a_per_node, params.mu[iteration], noise_nsig(params, iteration))
    connectivity = load_connectivity(zip_path)
    warmup = 20

    FastJansenRitSimulator(connectivity, *args, dt=dt, seed=42).run(5)  # numba compile / cache load
    fast = FastJansenRitSimulator(connectivity, *args, dt=dt, seed=42)
    _, _, fast_warm = _timed_run(fast, warmup)
    fast_wall, fast_cpu, fast_y = _timed_run(fast, tvb_steps)
    n_extra = max(fast_steps - tvb_steps, repeats)
    extra_wall, extra_cpu, fast_best_wall, fast_best_cpu, _ = _timed_chunks(fast, n_extra, repeats)
    n_fast = tvb_steps + n_extra

    tvb = TvbJansenRitSimulator(zip_path, *args, dt=dt, seed=42)
    _, _, tvb_warm = _timed_run(tvb, warmup)  # first steps include tvb's numba dfun compilation
    tvb_wall, tvb_cpu, tvb_best_wall, tvb_best_cpu, tvb_y = _timed_chunks(tvb, tvb_steps, repeats)

    both_fast = np.concatenate([fast_warm, fast_y]).astype(np.float64)
    both_tvb = np.concatenate([tvb_warm, tvb_y]).astype(np.float64)
    diff = np.abs(both_fast - both_tvb)
    return {
        "dt_ms": dt,
        "tvb_steps": tvb_steps,
        "fast_steps": n_fast,
        "tvb_ms_per_step_wall": 1e3 * tvb_wall / tvb_steps,
        "tvb_ms_per_step_cpu": 1e3 * tvb_cpu / tvb_steps,
        "fast_ms_per_step_wall": 1e3 * (fast_wall + extra_wall) / n_fast,
        "fast_ms_per_step_cpu": 1e3 * (fast_cpu + extra_cpu) / n_fast,
        "repeats": repeats,
        "tvb_best_chunk_ms_per_step_wall": 1e3 * tvb_best_wall,
        "tvb_best_chunk_ms_per_step_cpu": 1e3 * tvb_best_cpu,
        "fast_best_chunk_ms_per_step_wall": 1e3 * fast_best_wall,
        "fast_best_chunk_ms_per_step_cpu": 1e3 * fast_best_cpu,
        "compared_steps": warmup + tvb_steps,
        "max_abs_diff_mV": float(diff.max()),
        "max_abs_diff_after_500_steps_mV": float(diff[500:].max()) if len(diff) > 500 else float("nan"),
        "fraction_bit_identical": float(np.mean(both_fast == both_tvb)),
    }


def full_region_child(zip_path: Path, region: int, keep: Path | None) -> dict:
    from deepsif_assets.simulation import SimulationParams, simulate_region
    from neuro_core.files import tree_size_bytes

    out_root = keep or Path(tempfile.mkdtemp(prefix="deepsif_bench_"))
    out_dir = out_root / f"a{region}"
    last = [-10.0]

    def progress(m: int, k: int, pct: float) -> None:
        if pct - last[0] >= 10.0:
            last[0] = pct
            print(f"  region {region}: iteration {m} segment {k} {pct:5.1f} %", file=sys.stderr, flush=True)

    result = simulate_region(zip_path, region, SimulationParams(), out_dir, engine="fast", progress=progress)
    meta = result.to_metadata()
    meta["out_dir_bytes"] = tree_size_bytes(out_dir)
    meta["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if keep is None:
        import shutil

        shutil.rmtree(out_root)
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connectivity", type=Path, default=DEFAULT_ZIP)
    parser.add_argument("--dt", type=float, default=0.5)
    parser.add_argument(
        "--tvb-steps", type=int, default=1000, help="stock tvb-library steps to time (≈ 10 ms each)"
    )
    parser.add_argument("--fast-steps", type=int, default=20000, help="fast-engine steps to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks per engine (best one reported)")
    parser.add_argument("--region", type=int, default=0)
    parser.add_argument("--iteration", type=int, default=0)
    parser.add_argument(
        "--full-region", action="store_true", help="also simulate one full original-config region"
    )
    parser.add_argument("--keep-output", type=Path, default=None, help="keep the --full-region files here")
    parser.add_argument("--full-region-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pinned = pin_one_core()

    if args.full_region_child:
        print(json.dumps(full_region_child(args.connectivity, args.region, args.keep_output)))
        return 0

    print(f"DeepSIF engine benchmark: {args.connectivity.name}, dt={args.dt} ms, one core ({pinned})")
    r = compare_engines(
        args.connectivity,
        args.dt,
        args.tvb_steps,
        args.fast_steps,
        args.region,
        args.iteration,
        max(args.repeats, 1),
    )
    print(
        f"stock tvb-library : {r['tvb_ms_per_step_wall']:8.3f} ms/step wall, "
        f"{r['tvb_ms_per_step_cpu']:8.3f} ms/step CPU  ({r['tvb_steps']} steps)"
    )
    print(
        f"fast engine       : {r['fast_ms_per_step_wall']:8.4f} ms/step wall, "
        f"{r['fast_ms_per_step_cpu']:8.4f} ms/step CPU  ({r['fast_steps']} steps)"
    )
    print(
        f"speed-up          : {r['tvb_ms_per_step_wall'] / r['fast_ms_per_step_wall']:8.1f}x wall, "
        f"{r['tvb_ms_per_step_cpu'] / r['fast_ms_per_step_cpu']:8.1f}x CPU"
    )
    print(
        f"best of {r['repeats']} chunks : stock {r['tvb_best_chunk_ms_per_step_wall']:.3f} / "
        f"{r['tvb_best_chunk_ms_per_step_cpu']:.3f} ms/step, fast {r['fast_best_chunk_ms_per_step_wall']:.4f} / "
        f"{r['fast_best_chunk_ms_per_step_cpu']:.4f} ms/step (wall / CPU); speed-up "
        f"{r['tvb_best_chunk_ms_per_step_wall'] / r['fast_best_chunk_ms_per_step_wall']:.1f}x wall, "
        f"{r['tvb_best_chunk_ms_per_step_cpu'] / r['fast_best_chunk_ms_per_step_cpu']:.1f}x CPU"
    )
    print(
        f"max |Δ(y1−y2)|    : {r['max_abs_diff_mV']:.3g} mV over {r['compared_steps']} steps "
        f"(after step 500: {r['max_abs_diff_after_500_steps_mV']:.3g} mV); "
        f"bit-identical {100 * r['fraction_bit_identical']:.2f} %"
    )
    if args.full_region:
        cmd = [
            sys.executable,
            __file__,
            "--full-region-child",
            "--region",
            str(args.region),
            "--connectivity",
            str(args.connectivity),
        ]
        if args.keep_output:
            cmd += ["--keep-output", str(args.keep_output)]
        print(f"full region {args.region}, original configuration (3 × 20 × 10 s, dt 0.5), fast engine ...")
        child = subprocess.run(cmd, check=True, capture_output=True, text=True, stderr=None)
        meta = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"full region       : {meta['wall_time_s']:.1f} s wall, {meta['ms_per_step']:.4f} ms/step, "
            f"{meta['steps']} steps, peak RSS {meta['peak_rss_mb']:.0f} MB, "
            f"output {meta['out_dir_bytes'] / 1e6:.1f} MB ({len(meta['files'])} files)"
        )
        print(
            f"                    peak |y1−y2| after transient per iteration: {meta['peak_abs_after_transient']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
