"""Peak disk use of a region's folders and peak memory of processes, sampled while a step runs (pure)."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from neuro_core.files import tree_size_bytes


def folders_size_bytes(folders: Iterable[Path]) -> int:
    return sum(tree_size_bytes(folder) for folder in folders)


class PeakDiskSampler:
    """Context manager: sample the total size of ``folders`` every ``interval_s`` in a thread; keep the peak.

    The size is also sampled on entry, on exit and whenever :meth:`sample` is called (e.g. just before a
    deletion), so short-lived peaks at step boundaries are never missed.
    """

    def __init__(
        self, folders: Iterable[Path], interval_s: float = 0.5, on_sample: Callable[[int], None] | None = None
    ):
        self.folders = [Path(f) for f in folders]
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._on_sample = on_sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        size = folders_size_bytes(self.folders)
        self.peak_bytes = max(self.peak_bytes, size)
        if self._on_sample is not None:
            self._on_sample(size)
        return size

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> PeakDiskSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="peak-disk-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def self_peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_peak_rss_bytes(pid: int) -> int | None:
    """Peak resident memory (``VmHWM``) of a live process, or None if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Stopwatch:
    """Named wall-clock laps, in seconds."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps[name] = round(now - self._start, 3)
        self._start = now
        return self.laps[name]


class StepPeakRss:
    """Peak resident memory of this process while the ``with`` block runs (``peak_bytes``; None if unknown).

    Linux resets a process' high-water mark (``VmHWM``) to its current RSS when "5" is written to
    ``/proc/self/clear_refs``; reading it at the end gives the step's own peak, not the worker process' lifetime
    peak (``ru_maxrss``) that earlier runs in the same process would set. Where the reset is refused, nothing is
    reported rather than a misleading lifetime figure.
    """

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self._reset = False

    def __enter__(self) -> StepPeakRss:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
            self._reset = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.peak_bytes = process_peak_rss_bytes(os.getpid()) if self._reset else None
