"""Spike-clip extraction of one region: the former ``matlab/process_region_clips.m`` against the current one.

    .venv/bin/python benchmarks/deepsif_extraction_benchmark.py --raw-dir DIR/raw_nmm/a0 [--repeats 2]
    .venv/bin/python benchmarks/deepsif_extraction_benchmark.py --region 0 [--work-dir DIR]   # simulates if needed

The region folder (``--raw-dir``, named ``a<r>``) holds one region's raw data as ``simulate_region`` leaves it
(compact ``mean_iter_{m}_a_iter_{r}_ds.mat`` or the original segment files). Without ``--raw-dir`` the benchmark
uses ``<work-dir>/raw_nmm/a<region>``, and first simulates it there in the original configuration
(``simulate_region``, fast engine, compact raw: ≈ 2 min of one core, ≈ 1.2 GB) unless it is already complete
(``_complete.json``); the work dir is kept, so later runs reuse the data. The raw folder is only read: each run
gets a fresh source folder whose ``raw_nmm/a<r>`` is a symlink to it.

In one run, alternating ``--repeats`` times, a fresh ``octave-cli`` extracts the region with the old code
(``git show <old-rev>:matlab/*.m`` into a temporary folder, default rev 6f7d639) and with the current
``matlab/`` folder, in the original configuration (default options, iterations 0..2). Printed: seconds per region
(inside Octave, without its start-up) and per iteration (each iteration's log line; the old code logs 0.1 s), the
ratio old/new, and whether the outputs are identical: the same files under ``nmm_spikes/``, and every variable of
every clip, marker and peak-window cache bitwise equal (dtype, shape and bytes).

Timings are only meaningful on an idle machine: run it as ``flock /tmp/neuro-bench.lock .venv/bin/python …``
and check the load averages it prints. Octave's BLAS is limited to one thread (one core per extraction step).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_machine import load_average  # noqa: E402

from resources.octave import OCTAVE_MALLOC_TUNABLES  # noqa: E402

DEFAULT_OLD_REV = "6f7d639"  # the last commit before the extraction speed-up
LEADFIELD = REPO / "data" / "deepsif-anatomy" / "leadfield_75_20k.mat"
CONNECTIVITY = REPO / "data" / "deepsif-anatomy" / "connectivity_998.zip"
ITER_LINE = re.compile(r"region \d+ iter (\d+): \d+ peaks, (\d+) clips kept .*, ([0-9.]+) s$")


def old_code(rev: str, target: Path) -> Path:
    """The ``.m`` files of ``matlab/`` at ``rev`` (git show), written to ``target``."""
    names = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "--name-only", f"{rev}:matlab"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    target.mkdir(parents=True)
    for name in names:
        if name.endswith(".m"):
            text = subprocess.run(
                ["git", "-C", str(REPO), "show", f"{rev}:matlab/{name}"], check=True, capture_output=True
            ).stdout
            (target / name).write_bytes(text)
    return target


def ensure_raw(args) -> tuple[Path, int]:
    if args.raw_dir:
        raw = Path(args.raw_dir).resolve()
        match = re.fullmatch(r"a(\d+)", raw.name)
        if not match or not raw.is_dir():
            sys.exit(f"--raw-dir must be an existing region folder named a<r>, got {raw}")
        return raw, int(match.group(1))
    work = Path(args.work_dir).resolve()
    raw = work / "raw_nmm" / f"a{args.region}"
    if not (raw / "_complete.json").is_file():
        from deepsif_assets.simulation import SimulationParams, simulate_region

        print(f"simulating region {args.region} into {raw} (original configuration, ≈ 2 min) …", flush=True)
        started = time.perf_counter()
        simulate_region(CONNECTIVITY, args.region, SimulationParams(), raw)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return raw, args.region


def extract(
    code_dir: Path, raw: Path, region: int, source: Path, extra_env: dict[str, str]
) -> tuple[float, float, dict[int, float], dict[int, int]]:
    """One extraction in a fresh octave-cli: (seconds inside Octave, CPU seconds of the process (user + system),
    seconds and clips per iteration)."""
    (source / "raw_nmm").mkdir(parents=True)
    (source / "raw_nmm" / f"a{region}").symlink_to(raw, target_is_directory=True)
    code = (
        f"pkg load signal; addpath('{code_dir}'); t = tic; "
        f"process_region_clips({region}, '{source}', '{LEADFIELD}', 'spikes', struct()); "
        "fprintf('BENCH_SECONDS %.6f\\n', toc(t));"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **extra_env}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        ["octave-cli", "--no-gui", "--norc", "--eval", code], capture_output=True, text=True, env=env
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = result.stdout.splitlines()
    seconds = [float(line.split()[1]) for line in lines if line.startswith("BENCH_SECONDS")]
    if result.returncode != 0 or not seconds:
        sys.exit(f"extraction with {code_dir} failed:\n{result.stdout}\n{result.stderr}")
    matches = [m for line in lines if (m := ITER_LINE.search(line))]
    return seconds[0], cpu, {int(m[1]): float(m[3]) for m in matches}, {int(m[1]): int(m[2]) for m in matches}


def compare(old: Path, new: Path) -> tuple[bool, str]:
    """Every MAT file under the two ``nmm_spikes`` folders: same names, every variable bitwise equal."""
    a_files = sorted(p.relative_to(old) for p in old.rglob("*") if p.is_file())
    b_files = sorted(p.relative_to(new) for p in new.rglob("*") if p.is_file())
    if a_files != b_files:
        only_a = sorted(set(map(str, a_files)) - set(map(str, b_files)))
        only_b = sorted(set(map(str, b_files)) - set(map(str, a_files)))
        return False, f"different files: only old {only_a[:5]}, only new {only_b[:5]}"
    kinds = {"clip": 0, "marker": 0, "window cache": 0}
    for rel in a_files:
        va, vb = scipy.io.loadmat(old / rel), scipy.io.loadmat(new / rel)
        names = sorted(k for k in va if not k.startswith("__"))
        if names != sorted(k for k in vb if not k.startswith("__")):
            return False, f"{rel}: variables differ"
        for name in names:
            x, y = np.asarray(va[name]), np.asarray(vb[name])
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                detail = ""
                if x.shape == y.shape and x.dtype.kind == "f":
                    diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
                    detail = f", max |Δ| {diff.max():.3g}"
                return False, f"{rel}: variable {name} differs ({x.dtype}{x.shape} vs {y.dtype}{y.shape}{detail})"
        kind = "clip" if "data" in names else "marker" if "num_spike" in names else "window cache"
        kinds[kind] += 1
    return True, ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in kinds.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", help="existing region folder a<r> with raw data (default: simulate)")
    parser.add_argument("--region", type=int, default=0, help="region to simulate without --raw-dir")
    parser.add_argument(
        "--work-dir",
        default=str(Path(tempfile.gettempdir()) / "deepsif-extraction-bench"),
        help="where to simulate without --raw-dir (kept for reuse; default: <tmp>/deepsif-extraction-bench)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="old/new extraction pairs, alternating")
    parser.add_argument("--old-rev", default=DEFAULT_OLD_REV, help="git revision of the old matlab/ code")
    parser.add_argument("--keep", action="store_true", help="keep the extraction outputs (printed path)")
    args = parser.parse_args(argv)

    raw, region = ensure_raw(args)
    tmp = Path(tempfile.mkdtemp(prefix="extraction-bench-"))
    # (code, extra environment): the old code as it ran; the current code under glibc's default allocator; the
    # current code as the pipeline runs it (OctaveResource keeps freed memory in the session)
    variants = {
        "old": (old_code(args.old_rev, tmp / "old_matlab"), {}),
        "new, glibc default": (REPO / "matlab", {}),
        "new": (REPO / "matlab", {"GLIBC_TUNABLES": OCTAVE_MALLOC_TUNABLES}),
    }
    for path in raw.iterdir():  # the raw files into the page cache before the first timed run
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass
    print(f"region {region} from {raw}; old = {args.old_rev}:matlab, new = {REPO / 'matlab'}")
    print(f"load average before: {load_average()}")
    totals: dict[str, list[float]] = {label: [] for label in variants}
    cpus: dict[str, list[float]] = {label: [] for label in variants}
    iters: dict[str, list[dict[int, float]]] = {label: [] for label in variants}
    verdicts = []
    try:
        for rep in range(args.repeats):
            outs = {}
            for n, (label, (code_dir, extra_env)) in enumerate(variants.items()):
                source = tmp / f"{n}_{rep}"
                seconds, cpu, per_iter, clips = extract(code_dir, raw, region, source, extra_env)
                totals[label].append(seconds)
                cpus[label].append(cpu)
                iters[label].append(per_iter)
                outs[label] = source / "nmm_spikes"
                print(
                    f"  run {rep + 1} {label}: {seconds:6.2f} s per region ({cpu:.2f} CPU-s); per iteration "
                    + ", ".join(f"iter {m}: {s:.2f} s ({clips[m]} clips)" for m, s in sorted(per_iter.items())),
                    flush=True,
                )
            verdicts += [compare(outs["old"], outs[label]) for label in variants if label != "old"]
            if not args.keep:
                for n in range(len(variants)):
                    shutil.rmtree(tmp / f"{n}_{rep}")
        print(f"load average after : {load_average()}")
        best = {label: min(values) for label, values in totals.items()}
        median = {label: statistics.median(values) for label, values in totals.items()}
        for label in variants:
            per = {m: min(run[m] for run in iters[label]) for m in iters[label][0]}
            print(
                f"{label}: {best[label]:6.2f} s per region (best of {args.repeats}; median {median[label]:.2f} s; "
                f"CPU-s median {statistics.median(cpus[label]):.2f}); best per iteration "
                + ", ".join(f"iter {m}: {s:.2f} s" for m, s in sorted(per.items()))
            )
        for label in variants:
            if label != "old":
                print(
                    f"speed-up old/{label}: {best['old'] / best[label]:.2f}× (best), "
                    f"{median['old'] / median[label]:.2f}× (median)"
                )
        default = "new, glibc default"
        print(
            f"speed-up {default}/new: {best[default] / best['new']:.2f}× (best), "
            f"{median[default] / median['new']:.2f}× (median), CPU-s "
            f"{statistics.median(cpus[default]) / statistics.median(cpus['new']):.2f}× (median)"
        )
        identical = all(ok for ok, _ in verdicts)
        print(f"outputs identical: {'YES' if identical else 'NO'} — " + "; ".join(text for _, text in verdicts))
        if args.keep:
            print(f"outputs kept in {tmp}")
        return 0 if identical else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
