"""The three timestamp rules, chunked, against independent whole-array computations."""

import numpy as np
import pytest

from ephys_assets.dispatch import timestamps as ts
from ephys_assets.sample_data import fault_timestamps


def _times(n=30_000, fs=30_000.0):
    return np.arange(n) / fs


@pytest.mark.parametrize("fault", ["jump", "negative", "zeros"])
@pytest.mark.parametrize("chunk", [7, 1000, 10_000_000])
def test_chunked_matches_whole_array(fault, chunk):
    times = fault_timestamps(_times(), fault)
    assert ts.check_times_array(times, chunk_samples=chunk) == ts.full_diff_failure_message(times)


def test_thresholds_are_exact():
    t = _times(10_000)
    neg = t.copy()
    for k in range(10):  # exactly 10 negatives: not "greater than 10"
        neg[100 + 50 * k] = neg[99 + 50 * k] - 0.0003
    assert ts.check_times_array(neg) is None
    neg[900] = neg[899] - 0.0003
    assert ts.check_times_array(neg) == "too many negative timestamps diffs below 0.2: 11"
    gap = t.copy()
    gap[5000:] += 0.00199 - 1 / 30_000  # a 1.99 ms diff passes
    assert ts.check_times_array(gap) is None
    gap[7000:] += 0.00201 - 1 / 30_000
    assert ts.check_times_array(gap) == "too large time diff deviation: 2.01 ms"
    zeros = t.copy()
    n_diffs = len(t) - 1
    need = int(np.ceil(0.02 * n_diffs))
    idx = np.arange(1, need) * 4  # one short of 2 %
    zeros[idx] = zeros[idx - 1]
    assert ts.check_times_array(zeros) is None
    zeros[9001] = zeros[9000]
    assert ts.check_times_array(zeros) == f"too many zero diffs: {need}/{n_diffs}"


def test_rule_order_negative_before_large():
    t = fault_timestamps(fault_timestamps(_times(), "negative"), "jump")
    assert ts.check_times_array(t).startswith("too many negative")


def test_too_few_samples_is_a_failure_not_a_crash():
    assert ts.check_times_array(np.array([1.0])) == "too few samples: 1"


def test_regular_recordings_without_time_vector():
    from spikeinterface.core import NumpyRecording

    ok = NumpyRecording([np.zeros((100, 2), dtype="int16")], sampling_frequency=30_000)
    assert ts.check_recording_times(ok) is None
    slow = NumpyRecording([np.zeros((100, 2), dtype="int16")], sampling_frequency=400)  # 2.5 ms steps
    assert ts.check_recording_times(slow) == "too large time diff deviation: 2.5 ms"
    short = NumpyRecording([np.zeros((1, 2), dtype="int16")], sampling_frequency=30_000)
    assert ts.check_recording_times(short) == "too few samples: 1"


def test_recording_time_vector_checked_per_segment():
    from spikeinterface.core import NumpyRecording

    rec = NumpyRecording([np.zeros((3000, 1), dtype="int16")] * 2, sampling_frequency=30_000)
    rec.set_times(_times(3000), segment_index=0)
    rec.set_times(fault_timestamps(_times(3000), "jump"), segment_index=1)
    assert ts.check_recording_times(rec) == "too large time diff deviation: 10.03 ms"
