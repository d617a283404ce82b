"""Full-dataset projection: whole regions in the original configuration through ``deepsif-generate`` with its
defaults, on this machine; prints CPU-s per region, wall time, peak disk and memory, the projected wall time of
all 994 regions, and where the time goes (engine vs writing in the simulation runs, Octave vs the rest in the
extraction runs, from the runs' metadata).

    .venv/bin/python benchmarks/deepsif_dataset_projection.py [--regions 8] [--start 0] [-- extra deepsif-generate flags]

Runs in a fresh temporary source folder and Dagster instance (removed afterwards unless --keep). CPU time is that
of every process the command started (the command, its run workers, Octave), taken from the kernel's accounting of
waited-for children. Peak disk is sampled every 0.5 s over the source folder; peak memory is the largest summed
resident size of the command's process tree, sampled likewise.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neuro_core.files import tree_size_bytes  # noqa: E402

N_REGIONS = 994
REFERENCE_CPU_S_PER_REGION = 165.0  # measured at the previous main (stop 8), the same configuration and machine
GOAL_CPU_S_PER_REGION = 29.0


def _tree_rss_bytes(root_pid: int) -> int:
    """Summed resident memory of ``root_pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[pid] = int(line.split()[1]) * 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def _where_time_goes(home: Path, n_regions: int) -> list[str]:
    """Wall seconds per region of the simulation and extraction runs, split by the steps' own metadata."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        walls: dict[str, float] = {"raw_nmm": 0.0, "nmm_spikes": 0.0}
        for run in instance.get_runs():
            stats = instance.get_run_stats(run.run_id)
            for asset in run.asset_selection or ():
                if asset.to_user_string() in walls and stats.end_time and stats.start_time:
                    walls[asset.to_user_string()] += stats.end_time - stats.start_time
        engine = extraction = cleanup = 0.0
        for asset in walls:
            for record in instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records:
                values = {k: v.value for k, v in record.asset_materialization.metadata.items()}
                engine += values.get("simulated_steps", 0) * values.get("ms_per_step", 0.0) / 1000
                extraction += values.get("extraction_s", 0.0)
                cleanup += values.get("cleanup_s", 0.0)
    simulation, extract = walls["raw_nmm"] / n_regions, walls["nmm_spikes"] / n_regions
    engine, extraction, cleanup = engine / n_regions, extraction / n_regions, cleanup / n_regions
    return [
        "   where the time goes    wall s per region inside the runs (the runs' own metadata)",
        f"     simulation runs      {simulation:.1f}: engine {engine:.1f}, writing and the rest {simulation - engine:.1f}",
        f"     extraction runs      {extract:.1f}: Octave extraction {extraction:.1f}, clean-up {cleanup:.1f}, "
        f"the rest {extract - extraction - cleanup:.1f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--regions", type=int, default=8, help="whole regions to run (default: two full batches of 4, one per core)"
    )
    parser.add_argument("--start", type=int, default=0, help="first region")
    parser.add_argument("--keep", action="store_true", help="keep the temporary source folder and instance")
    parser.add_argument("extra", nargs="*", help="further deepsif-generate flags (after --)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="deepsif-projection-"))
    source, home = work / "source", work / "home"
    command = [
        str(Path(sys.executable).parent / "deepsif-generate"),
        "--start_region", str(args.start), "--end_region", str(args.start + args.regions),
        "--source-dir", str(source), *args.extra,
    ]  # fmt: skip
    print("command:", " ".join(command), flush=True)
    peaks = {"disk": 0, "rss": 0}
    done = threading.Event()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(command, env={**os.environ, "DAGSTER_HOME": str(home)}, cwd=work)

    def sample() -> None:
        while not done.wait(0.5):
            peaks["disk"] = max(peaks["disk"], tree_size_bytes(source))
            peaks["rss"] = max(peaks["rss"], _tree_rss_bytes(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    per_region = cpu / args.regions
    cores = os.cpu_count() or 1
    projected_h = N_REGIONS * per_region / cores / 3600
    print("\n== full-dataset projection (original configuration, this machine)")
    print(f"   exit status            {code}")
    print(f"   regions                {args.regions}")
    print(f"   wall time              {wall:.1f} s ({wall / args.regions:.1f} s per region)")
    print(f"   CPU time               {cpu:.1f} CPU-s, {per_region:.1f} CPU-s per region "
          f"(previous main {REFERENCE_CPU_S_PER_REGION:.0f}: {REFERENCE_CPU_S_PER_REGION / per_region:.2f}×; "
          f"goal ≤ {GOAL_CPU_S_PER_REGION:.0f})")
    print(f"   peak disk              {peaks['disk'] / 1e9:.2f} GB ({peaks['disk'] / 1e9 / args.regions:.2f} GB per region run)")
    print(f"   peak memory (tree RSS) {peaks['rss'] / 1e9:.2f} GB")
    print(f"   projected 994 regions  {projected_h:.2f} h on {cores} cores "
          f"(from CPU-s per region; the measured wall time gives {N_REGIONS * wall / args.regions / 3600:.2f} h)")
    if code == 0:
        print("\n".join(_where_time_goes(home, args.regions)))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"   kept {work}")
    return code


if __name__ == "__main__":
    sys.exit(main())
