"""What the region writer takes from each engine chunk, in compiled loops over the (steps, nodes, lanes) layout.

An engine chunk holds y1 − y2 as float32 (steps × nodes × lanes, lanes innermost). Per chunk the writer needs
every lane's peak |value| after the transient and, for the compact format, every ``factor``-th row of the fs
columns of every lane. NumPy does that with an ``abs`` temporary, a reduction and a fancy-indexed copy per lane
(≈ 20 % of a batch's CPU time in the original configuration); these loops read the chunk once per purpose and
give the same values (a maximum and copies are exact).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def update_lane_peaks(chunk: np.ndarray, first_row: int, peaks: np.ndarray) -> None:
    """``peaks[l] = max(peaks[l], |chunk[s, j, l]|)`` over rows ``s ≥ first_row`` and every node j (NaN ignored,
    as Python's ``max`` with the running peak first)."""
    n_steps, n_nodes, n_lanes = chunk.shape
    running = peaks.astype(np.float32)  # the peaks are float32 values: exact
    for s in range(first_row, n_steps):
        for j in range(n_nodes):
            for lane in range(n_lanes):
                value = abs(chunk[s, j, lane])
                running[lane] = value if value > running[lane] else running[lane]
    peaks[:] = running


def first_kept_row(chunk_start: int, skip: int, factor: int) -> int:
    """Row of a chunk starting at global sample ``chunk_start`` that is the first with global index
    g ≥ skip and (g − skip) divisible by ``factor`` (MATLAB ``downsample`` after dropping ``skip`` samples)."""
    offset = max(skip - chunk_start, 0)
    return offset + (-(chunk_start + offset - skip)) % factor


@njit(cache=True, nogil=True, error_model="numpy")
def copy_decimated_rows(
    chunk: np.ndarray, first_row: int, factor: int, columns: np.ndarray, dest: np.ndarray, dest_row: int
) -> int:
    """``dest[l, c, dest_row + i] = chunk[first_row + i·factor, columns[c], l]`` for every lane l (``dest[l]``:
    lane l's rows of each column, as a MAT-file stores them); returns the number of rows copied."""
    n_steps, _, n_lanes = chunk.shape
    n_rows = len(range(first_row, n_steps, factor))
    for c in range(columns.shape[0]):
        node = columns[c]
        for i in range(n_rows):
            s = first_row + i * factor
            for lane in range(n_lanes):
                dest[lane, c, dest_row + i] = chunk[s, node, lane]
    return n_rows
