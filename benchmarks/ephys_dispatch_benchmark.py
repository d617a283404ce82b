"""Ephys dispatch benchmark: dispatch time of the largest fixture, and peak memory of the timestamp check.

Run: ``.venv/bin/python benchmarks/ephys_dispatch_benchmark.py``. Each memory measurement runs in a fresh child
process (peak RSS via ``resource.getrusage``), on a 1-hour 30 kHz float64 time vector stored as ``.npy`` and
memory-mapped, the way Open Ephys sync timestamps are read. The reference is the original's approach: diffs of the
whole vector materialised at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
N_SAMPLES = 3600 * 30_000  # one hour at 30 kHz

# tracemalloc sees numpy's buffers: the memory the check itself allocates. VmHWM (peak resident set, reset at exec)
# also counts the memory-mapped file pages read, which are reclaimable page cache, not allocations.
CHILD = r"""
import json, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, {root!r})
from ephys_assets.dispatch import timestamps as ts
times = np.load({path!r}, mmap_mode="r")
tracemalloc.start()
start = time.perf_counter()
message = ts.check_times_array(times) if {mode!r} == "chunked" else ts.full_diff_failure_message(times)
elapsed = time.perf_counter() - start
_current, peak = tracemalloc.get_traced_memory()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({{"alloc_mb": peak / 1e6, "hwm_mb": hwm / 1024, "seconds": elapsed, "message": message}}))
"""


def measure_timestamp_check(path: Path, mode: str) -> dict:
    code = CHILD.format(root=str(ROOT), path=str(path), mode=mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from ephys_assets import sample_data as sd
    from ephys_assets.dispatch import discover_jobs, params_from_mapping, write_jobs

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # Largest fixture: SpikeGLX NP1 (AP+LF) + NP2 4-shank + NIDQ, two 2 s triggers (~190 MB of traces).
        data = tmp_path / "data"
        sd.write_spikeglx_session(data, run="bench", durations_s=(2.0, 2.0))
        size_mb = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 1e6
        start = time.perf_counter()
        result = discover_jobs(data, params_from_mapping({"input": "spikeglx"}))
        write_jobs(result.jobs, tmp_path / "results")
        dispatch_s = time.perf_counter() - start
        print(f"dispatch (largest fixture, {size_mb:.0f} MB, {len(result.jobs)} jobs): {dispatch_s:.2f} s")

        times_path = tmp_path / "times.npy"
        times = np.lib.format.open_memmap(times_path, mode="w+", dtype=np.float64, shape=(N_SAMPLES,))
        step = 10_000_000
        for start_index in range(0, N_SAMPLES, step):
            end = min(start_index + step, N_SAMPLES)
            times[start_index:end] = np.arange(start_index, end, dtype=np.float64) / 30_000.0
        times.flush()
        del times
        print(
            f"timestamp check on a 1-hour 30 kHz vector ({N_SAMPLES * 8 / 1e6:.0f} MB on disk, memory-mapped):"
        )
        chunked = measure_timestamp_check(times_path, "chunked")
        print(
            f"  chunked (ours):       peak allocated {chunked['alloc_mb']:.0f} MB, peak RSS incl. mapped file "
            f"{chunked['hwm_mb']:.0f} MB, {chunked['seconds']:.1f} s, result={chunked['message']}"
        )
        try:
            full = measure_timestamp_check(times_path, "full")
            print(
                f"  whole-array (orig.):  peak allocated {full['alloc_mb']:.0f} MB, peak RSS incl. mapped file "
                f"{full['hwm_mb']:.0f} MB, {full['seconds']:.1f} s, result={full['message']}"
            )
            print(
                f"  allocation ratio original/ours: {full['alloc_mb'] / max(chunked['alloc_mb'], 1e-3):.0f}x"
            )
        except subprocess.CalledProcessError as exc:
            print(f"  whole-array (orig.):  failed (likely out of memory): {exc.stderr.strip()[-200:]}")
        goal = "met" if chunked["alloc_mb"] <= 256 else "NOT met"
        print(f"  goal (allocated by the check) <= 256 MB: {goal}")


if __name__ == "__main__":
    main()
