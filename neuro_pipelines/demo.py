"""README command 1: the whole pipeline end to end on bundled sample data, through Dagster.

Uses the project-local persistent instance, so `bash scripts/ui.sh` afterwards shows every run, partition and
materialization this created. Outputs go under ``var/`` (the resources' default roots).
"""

from __future__ import annotations

import argparse
import sys
import time

from neuro_pipelines.instance import ensure_instance
from resources.deepsif_paths import DEFAULT_SOURCE_DIR
from resources.ephys_paths import DEFAULT_EPHYS_DATA_ROOT, DEFAULT_EPHYS_RESULTS_ROOT

# Reduced DeepSIF configuration: 2 regions on the real anatomy, 3 iterations × 2 segments × 5 s at dt = 0.5 ms.
DEMO_REGIONS = (0, 2)
DEMO_SIMULATION_FLAGS = ["--segments", "2", "--segment-ms", "5000"]


def run_ephys_demo() -> int:
    from ephys_assets import cli as ephys_cli
    from ephys_assets.sample_data import make_demo_session

    # The resources' default roots, so that the UI (sensor, re-materialisation) sees the same session.
    data_dir = DEFAULT_EPHYS_DATA_ROOT
    results_dir = DEFAULT_EPHYS_RESULTS_ROOT
    session = make_demo_session(data_dir)
    print(f"\n== ephys: sample SpikeGLX session {session}")
    return ephys_cli.main(
        ["--input", "spikeglx", "--data-dir", str(data_dir), "--results-dir", str(results_dir)]
    )


def run_deepsif_demo() -> int:
    from deepsif_assets import cli as deepsif_cli

    source_dir = DEFAULT_SOURCE_DIR
    start, end = DEMO_REGIONS
    print(f"\n== deepsif: regions {start}..{end - 1} (reduced configuration) -> {source_dir}")
    return deepsif_cli.main(
        [
            "--start_region", str(start),
            "--end_region", str(end),
            "--source-dir", str(source_dir),
            *DEMO_SIMULATION_FLAGS,
            "--mode", "test",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["ephys", "deepsif"], help="run one domain only")
    args = parser.parse_args(argv)
    home = ensure_instance()
    started = time.monotonic()
    status = 0
    if args.only in (None, "ephys"):
        status |= run_ephys_demo()
    if args.only in (None, "deepsif"):
        status |= run_deepsif_demo()
    print(f"\n== demo finished in {time.monotonic() - started:.0f} s ({'OK' if status == 0 else 'FAILED'})")
    print(f"   ephys jobs:       {DEFAULT_EPHYS_RESULTS_ROOT}")
    print(f"   deepsif outputs:  {DEFAULT_SOURCE_DIR}")
    print(f"   Dagster instance: {home}")
    print("   open the UI:      bash scripts/ui.sh   then browse http://127.0.0.1:3000")
    return status


if __name__ == "__main__":
    sys.exit(main())
