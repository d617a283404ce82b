"""The region writer's chunk loops against the NumPy expressions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from deepsif_assets.simulation.chunks import (
    append_rows,
    copy_decimated_rows,
    first_kept_row,
    update_lane_peaks,
)


@pytest.mark.parametrize("factor", [1, 4])
@pytest.mark.parametrize("first_row", [0, 5, 36, 37])
def test_lane_peaks_equal_the_numpy_maximum_of_every_factor_th_row_from_the_first(first_row, factor):
    rng = np.random.default_rng(first_row)
    chunk = rng.normal(scale=5.0, size=(37, 20, 6)).astype(np.float32)
    peaks = np.array([0.0, 100.0, 0.0, 0.0, 0.5, 0.0])  # running peaks from earlier chunks
    expected = np.maximum(peaks, np.abs(chunk[first_row::factor]).max(axis=(0, 1), initial=0.0))
    update_lane_peaks(chunk, first_row, factor, peaks)
    assert np.array_equal(peaks, expected)


def test_first_kept_row_matches_the_definition():
    for skip in (0, 3, 1000):
        for factor in (1, 4, 7):
            kept = [g for g in range(3000) if g >= skip and (g - skip) % factor == 0]
            for chunk_start in range(0, 2000, 83):
                expected = next(g for g in kept if g >= chunk_start) - chunk_start
                assert first_kept_row(chunk_start, skip, factor) == expected


def test_decimated_rows_stream_into_the_column_major_arrays_numpy_builds_at_once():
    rng = np.random.default_rng(1)
    n_steps, n_nodes, n_lanes, skip, factor = 500, 30, 5, 37, 4
    raw = rng.normal(size=(n_steps, n_nodes, n_lanes)).astype(np.float32)
    columns = rng.permutation(n_nodes)[:25].astype(np.int64)
    expected = raw[skip::factor][:, columns, :].transpose(2, 1, 0)  # lane, column, row
    dest = np.full(expected.shape, np.nan, dtype=np.float32)
    filled = 0
    for start in range(0, n_steps, 83):  # chunks that do not line up with the decimation
        chunk = raw[start : start + 83]
        filled += copy_decimated_rows(chunk, first_kept_row(start, skip, factor), factor, columns, dest, filled)
    assert filled == expected.shape[2]
    assert np.array_equal(dest, expected)


def test_a_nan_value_does_not_hide_the_peak_of_the_others():
    chunk = np.array([[[1.0, np.nan]], [[-3.0, 2.0]]], dtype=np.float32)  # 2 steps, 1 node, 2 lanes
    peaks = np.zeros(2)
    update_lane_peaks(chunk, 0, 1, peaks)
    assert peaks.tolist() == [3.0, 2.0]


def test_appended_rows_land_after_the_rows_already_there():
    rng = np.random.default_rng(2)
    dest = rng.normal(size=(3, 4, 50)).astype(np.float32)
    source = rng.normal(size=(3, 4, 20)).astype(np.float32)
    expected = dest.copy()
    expected[:, :, 10:25] = source[:, :, :15]
    append_rows(source, 15, dest, 10)
    assert np.array_equal(dest, expected)
