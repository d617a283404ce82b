"""Full-dataset projection: whole regions in the original configuration through ``deepsif-generate`` with its
defaults, on this machine; prints CPU-s per region, wall time, peak disk and memory, the projected wall time of
all 994 regions, and where the time goes (engine vs writing in the simulation runs, Octave vs the rest in the
extraction runs, from the runs' metadata).

    .venv/bin/python benchmarks/deepsif_dataset_projection.py [--regions 8] [--start 0] [-- extra deepsif-generate flags]

Runs in a fresh temporary source folder and Dagster instance (removed afterwards unless --keep). CPU time is that
of every process the command started (the command, its run workers, Octave), taken from the kernel's accounting of
waited-for children. The projection separates what a generation costs once (its start-up, the synthetic source
step, its shutdown) from what each region costs: the CPU time of the command's process tree is sampled every
0.25 s, and the regions' phase runs from the first region run's start to the last one's end (the runs' records).
994 regions = the once-only cost + 994 × the regions' phase per region + the synthetic step's growth per region
(from ``deepsif_synthetic_benchmark.py``). Peak disk is sampled likewise over the source folder; peak memory is
the largest summed resident size of the command's process tree.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neuro_core.files import tree_size_bytes  # noqa: E402

N_REGIONS = 994
REFERENCE_CPU_S_PER_REGION = 165.0  # the previous main (stop 8), 2 regions, the same configuration and machine
GOAL_CPU_S_PER_REGION = 29.0
# The synthetic source grows by ≈ 0.073 CPU-s per region (benchmarks/deepsif_synthetic_benchmark.py: 73 s for 994
# regions, train mode, one core); the rest of that step is a fixed cost, measured here with the generation's end.
SYNTHETIC_CPU_S_PER_REGION = 0.073
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _tree_usage(root_pid: int) -> tuple[int, float]:
    """Summed resident memory (bytes) and CPU time (s, including reaped children) of ``root_pid`` and all its
    descendants, from /proc."""
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, float]] = {}
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
        # utime, stime, cutime, cstime: a child's time moves into its parent's c-fields when it is waited for
        cpu = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
        rss = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        usage[pid] = (rss, cpu)
    rss_total, cpu_total, stack = 0, 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        rss, cpu = usage.get(pid, (0, 0.0))
        rss_total, cpu_total = rss_total + rss, cpu_total + cpu
        stack += children.get(pid, [])
    return rss_total, cpu_total


def _where_time_goes(home: Path, n_regions: int) -> tuple[list[str], tuple[float, float]]:
    """Wall seconds per region of the simulation and extraction runs, split by the steps' own metadata; and the
    regions' phase: the first region run's start and the last one's end (epoch seconds)."""
    import dagster as dg

    from deepsif_assets.definitions import REGION_JOB

    with dg.DagsterInstance.from_config(str(home)) as instance:
        walls: dict[str, float] = {"raw_nmm": 0.0, "nmm_spikes": 0.0}
        starts, ends = [], []
        for run in instance.get_runs():
            stats = instance.get_run_stats(run.run_id)
            if run.job_name == REGION_JOB and stats.start_time and stats.end_time:
                starts.append(stats.start_time)
                ends.append(stats.end_time)
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
    lines = [
        "   where the time goes    wall s per region inside the runs (the runs' own metadata)",
        f"     simulation runs      {simulation:.1f}: engine {engine:.1f}, writing and the rest {simulation - engine:.1f}",
        f"     extraction runs      {extract:.1f}: Octave extraction {extraction:.1f}, clean-up {cleanup:.1f}, "
        f"the rest {extract - extraction - cleanup:.1f}",
    ]
    return lines, (min(starts), max(ends))


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
    cpu_series: list[tuple[float, float]] = []  # (epoch s, CPU-s of the command's process tree so far)
    done = threading.Event()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(command, env={**os.environ, "DAGSTER_HOME": str(home)}, cwd=work)

    def sample() -> None:
        while not done.wait(0.25):
            rss, tree_cpu = _tree_usage(process.pid)
            cpu_series.append((time.time(), tree_cpu))
            peaks["rss"] = max(peaks["rss"], rss)
            peaks["disk"] = max(peaks["disk"], tree_size_bytes(source))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    n = args.regions
    cores = os.cpu_count() or 1
    print("\n== full-dataset projection (original configuration, this machine)")
    print(f"   exit status            {code}")
    print(f"   regions                {n}")
    print(f"   wall time              {wall:.1f} s ({wall / n:.1f} s per region)")
    print(f"   CPU time               {cpu:.1f} CPU-s, {cpu / n:.1f} CPU-s per region of this generation "
          f"(previous main {REFERENCE_CPU_S_PER_REGION:.0f} likewise: {REFERENCE_CPU_S_PER_REGION * n / cpu:.2f}×)")
    print(f"   peak disk              {peaks['disk'] / 1e9:.2f} GB ({peaks['disk'] / 1e9 / n:.2f} GB per region run)")
    print(f"   peak memory (tree RSS) {peaks['rss'] / 1e9:.2f} GB")
    if code == 0:
        lines, (first, last) = _where_time_goes(home, n)
        # a process reaped between reading its parent and itself drops out of one sample: keep the running maximum
        times = np.array([t for t, _ in cpu_series])
        tree_cpu = np.maximum.accumulate(np.array([c for _, c in cpu_series]))
        regions_cpu = float(np.interp(last, times, tree_cpu) - np.interp(first, times, tree_cpu))
        regions_wall = last - first
        per_region = regions_cpu / n
        synthetic_growth = SYNTHETIC_CPU_S_PER_REGION * (N_REGIONS - n)
        projected_cpu = (cpu - regions_cpu) + N_REGIONS * per_region + synthetic_growth
        projected_wall = (wall - regions_wall) + N_REGIONS * regions_wall / n + synthetic_growth
        print(f"   regions' phase         {regions_cpu:.1f} CPU-s in {regions_wall:.1f} s (first region run's start to "
              f"the last one's end): {per_region:.1f} CPU-s per region")
        print(f"   once per generation    {cpu - regions_cpu:.1f} CPU-s in {wall - regions_wall:.1f} s (start-up; "
              f"synthetic source over {n} regions, + {SYNTHETIC_CPU_S_PER_REGION} CPU-s per further region; shutdown)")
        print(f"   projected 994 regions  {projected_cpu / cores / 3600:.2f} h on {cores} cores: "
              f"{projected_cpu / N_REGIONS:.1f} CPU-s per region all-in (goal ≤ {GOAL_CPU_S_PER_REGION:.0f}); "
              f"from the wall times {projected_wall / 3600:.2f} h")
        print(f"   (charging this generation's once-only cost to each of its {n} regions instead: "
              f"{N_REGIONS * cpu / n / cores / 3600:.2f} h)")
        print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"   kept {work}")
    return code


if __name__ == "__main__":
    sys.exit(main())
