"""The three timestamp rules of the original dispatcher, computed chunk by chunk in bounded memory.

d = consecutive differences of a segment's times in milliseconds. Rules, checked in this order:
1. more than ``MAX_NUM_NEGATIVE_TIMESTAMPS`` diffs below ``-ACCEPTED_NEGATIVE_DEVIATION_MS``;
2. max |d| above ``ABS_MAX_TIMESTAMPS_DEVIATION_MS``;
3. at least ``MAX_PERCENT_ZERO_TIMESTAMPS_DIFF * len(d)`` diffs exactly zero.
The original materialised ``np.diff(times) * 1000`` for the whole segment; we stream fixed-size chunks instead
(a 1-hour 30 kHz segment has 108 M samples, i.e. 864 MB per float64 copy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ACCEPTED_NEGATIVE_DEVIATION_MS = 0.2
MAX_NUM_NEGATIVE_TIMESTAMPS = 10
ABS_MAX_TIMESTAMPS_DEVIATION_MS = 2
MAX_PERCENT_ZERO_TIMESTAMPS_DIFF = 0.02
DEFAULT_CHUNK_SAMPLES = 1_000_000  # 8 MB of float64 per chunk


@dataclass(frozen=True)
class DiffStats:
    """Summary of the diffs of one segment's time vector (all the rules need)."""

    n_diffs: int
    n_negative: int
    max_abs_ms: float
    n_zero: int


def diff_stats_chunked(
    read_times: Callable[[int, int], np.ndarray], n_samples: int, chunk_samples: int = DEFAULT_CHUNK_SAMPLES
) -> DiffStats:
    """Stream ``read_times(start, end)`` in chunks overlapping by one sample and accumulate :class:`DiffStats`."""
    n_negative = 0
    n_zero = 0
    max_abs = 0.0
    start = 0
    while start < n_samples - 1:
        end = min(start + chunk_samples + 1, n_samples)
        diffs_ms = np.diff(np.asarray(read_times(start, end), dtype=np.float64))
        diffs_ms *= 1000.0
        n_negative += int(np.count_nonzero(diffs_ms < -ACCEPTED_NEGATIVE_DEVIATION_MS))
        n_zero += int(np.count_nonzero(diffs_ms == 0))
        max_abs = max(max_abs, float(np.max(np.abs(diffs_ms, out=diffs_ms))))
        start = end - 1
    return DiffStats(max(n_samples - 1, 0), n_negative, max_abs, n_zero)


def regular_diff_stats(n_samples: int, sampling_frequency: float) -> DiffStats:
    """Stats of t = t_start + i/fs without building the vector: every diff is 1000/fs ms."""
    n_diffs = max(n_samples - 1, 0)
    return DiffStats(n_diffs, 0, 1000.0 / sampling_frequency if n_diffs else 0.0, 0)


def failure_message(stats: DiffStats) -> str | None:
    """The original's message for the first failing rule, or None when the segment passes.

    A segment with fewer than 2 samples fails with "too few samples: N" (the original crashed, D17).
    """
    if stats.n_diffs < 1:
        return "too few samples: fewer than 2"
    if stats.n_negative > MAX_NUM_NEGATIVE_TIMESTAMPS:
        return (
            f"too many negative timestamps diffs below {ACCEPTED_NEGATIVE_DEVIATION_MS}: {stats.n_negative}"
        )
    if stats.max_abs_ms > ABS_MAX_TIMESTAMPS_DEVIATION_MS:
        return f"too large time diff deviation: {round(stats.max_abs_ms, 2)} ms"
    if stats.n_zero >= MAX_PERCENT_ZERO_TIMESTAMPS_DIFF * stats.n_diffs:
        return f"too many zero diffs: {stats.n_zero}/{stats.n_diffs}"
    return None


def check_recording_times(recording, chunk_samples: int = DEFAULT_CHUNK_SAMPLES) -> str | None:
    """Check every segment of a SpikeInterface recording in order; return the first failure message or None."""
    fs = recording.get_sampling_frequency()
    for segment_index in range(recording.get_num_segments()):
        n_samples = recording.get_num_samples(segment_index=segment_index)
        if n_samples < 2:
            return f"too few samples: {n_samples}"
        if recording.has_time_vector(segment_index=segment_index):

            def read(start: int, end: int, _seg: int = segment_index) -> np.ndarray:
                return recording.get_times(segment_index=_seg, start_frame=start, end_frame=end)

            stats = diff_stats_chunked(read, n_samples, chunk_samples)
        else:
            stats = regular_diff_stats(n_samples, fs)
        message = failure_message(stats)
        if message is not None:
            return message
    return None


def check_times_array(times: np.ndarray, chunk_samples: int = DEFAULT_CHUNK_SAMPLES) -> str | None:
    """Check one in-memory (or memory-mapped) time vector in seconds."""
    if len(times) < 2:
        return f"too few samples: {len(times)}"
    return failure_message(diff_stats_chunked(lambda s, e: times[s:e], len(times), chunk_samples))


def full_diff_failure_message(times: np.ndarray) -> str | None:
    """The original's approach (whole-array diffs), kept only as the benchmark's reference."""
    diffs_ms = np.diff(times) * 1000
    n_negative = int(np.sum(diffs_ms < -ACCEPTED_NEGATIVE_DEVIATION_MS))
    if n_negative > MAX_NUM_NEGATIVE_TIMESTAMPS:
        return f"too many negative timestamps diffs below {ACCEPTED_NEGATIVE_DEVIATION_MS}: {n_negative}"
    max_abs = float(np.max(np.abs(diffs_ms)))
    if max_abs > ABS_MAX_TIMESTAMPS_DEVIATION_MS:
        return f"too large time diff deviation: {round(max_abs, 2)} ms"
    n_zero = int(np.sum(diffs_ms == 0))
    if n_zero >= MAX_PERCENT_ZERO_TIMESTAMPS_DIFF * len(diffs_ms):
        return f"too many zero diffs: {n_zero}/{len(diffs_ms)}"
    return None
