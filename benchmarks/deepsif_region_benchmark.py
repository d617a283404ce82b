"""One DeepSIF region end to end through Dagster: simulation (fast engine, compact raw) → Octave extraction → cleanup.

    .venv/bin/python benchmarks/deepsif_region_benchmark.py [--region 0] [--short] [--source-dir DIR]

Default: the original configuration (dt 0.5 ms, 3 iterations × 20 × 10 s = 1.2 M steps). ``--short`` runs
2 × 2 s per iteration for a quick check. Prints wall time per step, peak disk of the region, peak memory (RSS)
of the Python process and of Octave, clip counts, and the ratios against the spec's reference figures
(stock tvb-library ≈ 4 h per region, original disk ≈ 4.8 GB raw + ≈ 6.4 GB Octave text, budget 1.5 GB).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg

from deepsif_assets.definitions import REGION_JOB
from neuro_core.measure import self_peak_rss_bytes
from neuro_pipelines.definitions import defs
from resources.deepsif_paths import DEFAULT_ANATOMY_DIR

REFERENCE_STOCK_TVB_S = 4 * 3600.0  # ≈ 4 h per region, stock tvb-library, one core (measured ≈ 12.4 ms/step)
REFERENCE_ORIGINAL_DISK = 4.8e9 + 6.4e9  # the original's raw segments + Octave's text _ds.mat cache
DISK_BUDGET = 1.5e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", type=int, default=0)
    parser.add_argument(
        "--short", action="store_true", help="2 × 2000 ms per iteration instead of 20 × 10000 ms"
    )
    parser.add_argument(
        "--source-dir", default=None, help="output folder (default: a temporary folder, removed)"
    )
    parser.add_argument("--anatomy-dir", default=str(DEFAULT_ANATOMY_DIR))
    args = parser.parse_args(argv)

    source = Path(args.source_dir) if args.source_dir else Path(tempfile.mkdtemp(prefix="deepsif-bench-"))
    raw_config = {"engine": "fast", "raw_format": "compact"}
    if args.short:
        raw_config.update(segment_ms=2000.0, n_segments=2)
    key = str(args.region)
    started = time.perf_counter()
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("regions", [key])
            result = defs.resolve_job_def(REGION_JOB).execute_in_process(
                instance=instance,
                partition_key=key,
                run_config={
                    "ops": {"raw_nmm": {"config": raw_config}, "nmm_spikes": {"config": {}}},
                    "resources": {
                        "deepsif_paths": {"config": {"anatomy_dir": args.anatomy_dir, "source_dir": str(source)}}
                    },
                },
                tags={"region": key},
            )
            sim = result.asset_materializations_for_node("raw_nmm")[0].metadata
            ext = result.asset_materializations_for_node("nmm_spikes")[0].metadata
        total = time.perf_counter() - started

        def v(meta, name, default=None):
            return meta[name].value if name in meta else default

        peak_disk = 1e6 * max(v(sim, "batch_peak_disk_mb", 0), v(ext, "peak_disk_mb", 0))
        steps = v(sim, "ms_per_step")
        print(
            f"DeepSIF region {key}, {'SHORT' if args.short else 'original'} configuration, fast engine, compact raw"
        )
        print(
            f"  simulation (raw_nmm)      : {v(sim, 'wall_time_s'):9.1f} s   ({steps} ms/step, {v(sim, 'raw_mb'):.0f} MB raw)"
        )
        print(
            f"  extraction (nmm_spikes)   : {v(ext, 'extraction_s'):9.1f} s   ({v(ext, 'total_clips')} clips: {v(ext, 'clips_per_iteration')})"
        )
        print(
            f"  cleanup                   : {v(ext, 'cleanup_s'):9.3f} s   (raw deleted: {v(ext, 'raw_deleted')}, {v(ext, 'raw_freed_mb'):.0f} MB)"
        )
        print(f"  total wall (incl. Dagster): {total:9.1f} s")
        print(
            f"  peak disk of the region   : {peak_disk / 1e6:9.1f} MB  (budget {DISK_BUDGET / 1e9:.1f} GB: "
            f"{'OK' if peak_disk <= DISK_BUDGET else 'EXCEEDED'}; original ≈ {REFERENCE_ORIGINAL_DISK / 1e9:.1f} GB, "
            f"ratio {REFERENCE_ORIGINAL_DISK / max(peak_disk, 1):.1f}×)"
        )
        print(f"  peak RSS python           : {self_peak_rss_bytes() / 1e6:9.1f} MB")
        print(f"  peak RSS octave           : {v(ext, 'engine_peak_rss_mb', float('nan')):9.1f} MB")
        if not args.short:
            print(
                f"  vs stock tvb-library ≈ 4 h/region: {REFERENCE_STOCK_TVB_S / total:.0f}× faster end to end"
            )
    finally:
        if not args.source_dir:
            shutil.rmtree(source, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
