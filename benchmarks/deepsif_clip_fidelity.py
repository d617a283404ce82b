"""Whole-region clip fidelity of the fast precision against the faithful one, asserted over several regions.

    .venv/bin/python benchmarks/deepsif_clip_fidelity.py [--regions 0 1 2 3 500 501 502 503] [--keep]
        [-- extra deepsif-generate flags, e.g. --workers 1]

Every listed region runs through ``deepsif-generate`` in the original configuration (3 iterations × 20 × 10 s,
compact raw data, Octave extraction) twice, in two fresh source folders and Dagster instances: once with
``--precision faithful`` (libm exp and a float64 ring: bit for bit the single-simulation engine, the reference)
and once with ``--precision fast`` (the default). Contiguous regions share one command, so they are batched as
``deepsif-generate`` batches them by default. About 20 min for the default 8 regions on 2 cores.

Asserted per region and iteration: the same number of clips and the same marker spike times; per clip
max |Δ| ≤ 1e-3 · max |reference clip|. Printed: clip counts, the worst clip's relative difference per region, the
share of bit-identical clips, and for a failing iteration the spike times found by one precision only. Exit
status 1 if any region fails the criterion, 2 if a command fails.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deepsif_assets.extraction import read_marker  # noqa: E402
from deepsif_assets.layout import RegionLayout  # noqa: E402

DEFAULT_REGIONS = (0, 1, 2, 3, 500, 501, 502, 503)
ITERATIONS = (0, 1, 2)
MAX_RELATIVE_DIFF = 1e-3


def contiguous_ranges(regions: list[int]) -> list[tuple[int, int]]:
    """Sorted regions as (start, end exclusive) runs of consecutive ids."""
    ranges: list[tuple[int, int]] = []
    for region in sorted(set(regions)):
        if ranges and ranges[-1][1] == region:
            ranges[-1] = (ranges[-1][0], region + 1)
        else:
            ranges.append((region, region + 1))
    return ranges


def generate(source: Path, home: Path, regions: list[int], precision: str, extra: list[str]) -> float:
    """``deepsif-generate`` over ``regions`` with ``precision``; wall seconds. Exits 2 if a command fails."""
    started = time.monotonic()
    for start, end in contiguous_ranges(regions):
        command = [
            str(Path(sys.executable).parent / "deepsif-generate"),
            "--start_region", str(start), "--end_region", str(end), "--source-dir", str(source),
            "--precision", precision, "--no-synthetic-source", *extra,
        ]  # fmt: skip
        done = subprocess.run(command, env={**os.environ, "DAGSTER_HOME": str(home)}, cwd=home.parent)
        if done.returncode != 0:
            print(f"FAILED: {' '.join(command)} (exit {done.returncode})")
            sys.exit(2)
    return time.monotonic() - started


def _clip(layout: RegionLayout, k: int) -> np.ndarray:
    return scipy.io.loadmat(layout.clip_path(k), variable_names=["data"])["data"].astype(np.float64)


def compare_region(reference: RegionLayout, fast: RegionLayout) -> dict:
    """Markers and clips of one region: the problems found and the worst clip's relative difference."""
    problems: list[str] = []
    worst, identical, total = 0.0, 0, 0
    for m in ITERATIONS:
        ref_marker, new_marker = read_marker(reference.marker_path(m)), read_marker(fast.marker_path(m))
        if ref_marker.num_spike != new_marker.num_spike:
            problems.append(
                f"iteration {m}: {new_marker.num_spike} clips vs {ref_marker.num_spike} (cumulative)"
            )
        if ref_marker.spike_time != new_marker.spike_time:
            only_ref = sorted(set(ref_marker.spike_time) - set(new_marker.spike_time))
            only_new = sorted(set(new_marker.spike_time) - set(ref_marker.spike_time))
            problems.append(
                f"iteration {m}: spike times only with faithful {only_ref}, only with fast {only_new}"
            )
        total = ref_marker.num_spike
    if problems:
        return {"problems": problems, "clips": total, "worst": float("nan"), "identical": 0}
    for k in range(1, total + 1):
        ref, new = _clip(reference, k), _clip(fast, k)
        if ref.shape != new.shape:
            problems.append(f"clip {k}: shape {new.shape} vs {ref.shape}")
            continue
        relative = float(np.abs(new - ref).max() / np.abs(ref).max())
        worst = max(worst, relative)
        identical += bool(np.array_equal(ref, new))
        if relative > MAX_RELATIVE_DIFF:
            problems.append(f"clip {k}: max|Δ|/max|y| = {relative:.3g} > {MAX_RELATIVE_DIFF:g}")
    return {"problems": problems, "clips": total, "worst": worst, "identical": identical}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=list(DEFAULT_REGIONS), help="fs region ids")
    parser.add_argument("--keep", action="store_true", help="keep the temporary source folders and instances")
    parser.add_argument("extra", nargs="*", help="further deepsif-generate flags (after --)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="deepsif-clip-fidelity-"))
    sources = {}
    for precision in ("faithful", "fast"):
        root = work / precision
        (root / "home").mkdir(parents=True)
        sources[precision] = root / "source"
        wall = generate(sources[precision], root / "home", args.regions, precision, args.extra)
        print(f"precision {precision}: {len(args.regions)} regions in {wall:.0f} s", flush=True)

    failed = []
    print(f"\nfast vs faithful precision, per region (criterion: same clips and spike times, "
          f"max|Δ| ≤ {MAX_RELATIVE_DIFF:g}·max|y| per clip)")  # fmt: skip
    for region in sorted(set(args.regions)):
        result = compare_region(
            RegionLayout(sources["faithful"], region), RegionLayout(sources["fast"], region)
        )
        verdict = "OK" if not result["problems"] else "FAILED"
        print(
            f"  region {region:3d}: {result['clips']:4d} clips, worst clip max|Δ|/max|y| {result['worst']:.3g}, "
            f"bit-identical clips {result['identical']}/{result['clips']} -> {verdict}"
        )
        for problem in result["problems"][:5]:
            print(f"      {problem}")
        if result["problems"]:
            failed.append(region)
    print(f"\n{'all regions meet the criterion' if not failed else f'FAILED regions: {failed}'}")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
