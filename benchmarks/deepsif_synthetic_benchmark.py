"""Benchmark: synthetic source, train mode, 994 regions x 30 clips, one core.

    .venv/bin/python benchmarks/deepsif_synthetic_benchmark.py [--clips-per-region 30] [--no-window-cache]
        [--compressed-clips] [--original-pairs 300] [--work-dir DIR] [--keep]

Clip files: 30 distinct "universal" clips (a spike-like waveform in every column on N(0, 0.5) noise, uncompressed
MAT v5 as the extraction writes them by default), hard-linked into every ``a{r}/`` (29,820 links, 60 MB on disk).
Every clip is still loaded separately by the generator, but from the page cache (no cold-disk reads).
``--compressed-clips`` writes them compressed like ``-v7`` (extraction's ``compress_clips``), which adds the zlib
inflate cost (about 7 ms of the 9 ms spent per clip on the 2-vCPU test machine).

Peak-window caches: the extraction step ends by writing ``nmm_spikes/clip_windows/a{r}.mat`` with
``matlab/write_clip_windows.m``; the benchmark writes them the same way (one Octave loop over the regions, timed and
reported per region as the cost moved into extraction) so the generator reads them instead of inflating every
clip. ``--no-window-cache`` measures the generator on the clips alone.

Prints: our wall time (pipeline + Octave generator, clip store off) with the Octave phase timings, and the
original per-sample approach (reload the clip and project it twice for every (sample, source)) measured on a
sample of pairs with ``matlab/synth_original_cost.m`` and extrapolated to all pairs; the ratio of the two.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_machine import load_average, pin_one_core  # noqa: E402

from deepsif_assets.params import SyntheticParams  # noqa: E402
from deepsif_assets.synthetic.pipeline import SyntheticRequest, build_synthetic_source  # noqa: E402

ANATOMY = ROOT / "data" / "deepsif-anatomy"
MATLAB_DIR = ROOT / "matlab"
ONE_CORE_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def make_clips(source: Path, per_region: int, compressed: bool, n_regions: int = 994) -> None:
    rng = np.random.default_rng(0)
    pool_dir = source / "pool"
    pool_dir.mkdir(parents=True)
    t = np.arange(500)[:, None]
    pool = []
    for i in range(per_region):
        t0 = rng.integers(60, 440, n_regions)[None, :]
        wave = 12 * np.exp(-(((t - t0) / 10.0) ** 2)) - 4 * np.exp(-(((t - t0 - 50) / 20.0) ** 2))
        data = (rng.normal(0, 0.5, (500, n_regions)) + wave).astype(np.float32)
        path = pool_dir / f"pool_{i}.mat"
        scipy.io.savemat(path, {"data": data}, do_compression=compressed)
        pool.append(path)
    for r in range(n_regions):
        folder = source / "nmm_spikes" / f"a{r}"
        folder.mkdir(parents=True)
        for k in range(1, per_region + 1):
            os.link(pool[(r + k) % per_region], folder / f"nmm_{k}.mat")


def octave_eval(code: str, log: list[str]) -> None:
    env = {**os.environ, **ONE_CORE_ENV}
    proc = subprocess.run(
        ["octave-cli", "--no-gui", "--eval", f"addpath('{MATLAB_DIR}'); {code}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    log.extend(proc.stdout.splitlines())
    if proc.returncode != 0:
        raise RuntimeError(f"octave failed: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-region", type=int, default=30)
    parser.add_argument(
        "--original-pairs", type=int, default=300, help="pairs timed for the original approach"
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--compressed-clips",
        action="store_true",
        help="write the clips compressed like -v7 (extraction's compress_clips) instead of uncompressed",
    )
    parser.add_argument(
        "--no-window-cache",
        action="store_true",
        help="do not write the per-region peak-window caches (the generator then loads every clip)",
    )
    args = parser.parse_args()

    pin_one_core()  # inherited by Octave
    work = Path(tempfile.mkdtemp(prefix="synthetic-bench-", dir=args.work_dir))
    try:
        t0 = time.perf_counter()
        make_clips(work, args.clips_per_region, compressed=args.compressed_clips)
        print(
            f"clips ({'compressed, like -v7' if args.compressed_clips else 'uncompressed, like -v6'}): "
            f"994 regions x {args.clips_per_region} (hard links to {args.clips_per_region} files) "
            f"in {time.perf_counter() - t0:.1f} s"
        )

        if not args.no_window_cache:
            t0 = time.perf_counter()
            clips_root = work / "nmm_spikes"
            octave_eval(
                f"mkdir('{clips_root / 'clip_windows'}'); for r = 0:993, "
                f"write_clip_windows(fullfile('{clips_root}', sprintf('a%d', r)), r, {args.clips_per_region}, "
                f"fullfile('{clips_root}', 'clip_windows', sprintf('a%d.mat', r))); end",
                [],
            )
            per_region = (time.perf_counter() - t0) / 994
            print(
                f"peak-window caches (write_clip_windows.m, part of extraction): {per_region * 1e3:.0f} ms per "
                f"region, {sum(f.stat().st_size for f in (clips_root / 'clip_windows').iterdir()) / 1e9:.2f} GB "
                "for 994 regions"
            )

        log: list[str] = []

        def engine(function: str, *call_args: str) -> None:
            octave_eval(f"{function}({', '.join(repr(str(a)) for a in call_args)})", log)

        t0 = time.perf_counter()
        result = build_synthetic_source(
            SyntheticRequest(
                ANATOMY, work, tuple(range(994)), SyntheticParams(mode="train", seed=0, write_clip_store=False)
            ),
            engine,
            log=lambda m: None,
        )
        ours = time.perf_counter() - t0
        pairs_total = result.n_samples * 2
        for line in log:
            print("  octave:", line)
        print(
            f"ours: train mode, N = {result.n_samples}, {pairs_total} (sample, source) pairs, "
            f"wall {ours:.1f} s on one core (goal <= 120 s), "
            f"{len(result.regions_window_cached)} regions read from peak-window caches"
        )

        cost_file = work / "original_cost.mat"
        octave_eval(
            f"synth_original_cost('{result.output_file}', '{work / 'nmm_spikes'}', "
            f"'{ANATOMY / 'leadfield_75_20k.mat'}', {args.original_pairs}, '{cost_file}')",
            [],
        )
        cost = scipy.io.loadmat(cost_file)
        per_pair = float(cost["seconds_per_pair"].ravel()[0])
        original = per_pair * pairs_total
        print(
            f"original approach: {per_pair * 1e3:.2f} ms per (sample, source) pair measured on "
            f"{args.original_pairs} pairs -> {original:.0f} s ({original / 60:.1f} min) extrapolated to "
            f"{pairs_total} pairs (scale_ratio only; growth and I/O of other variables excluded)"
        )
        print(f"ratio original / ours: {original / ours:.1f}x")
        print(
            f"scale_ratio agreement on the timed pairs: max relative difference "
            f"{float(cost['max_rel_diff'].ravel()[0]):.2e}"
        )
        print(f"load average at the end: {load_average()}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
