"""The numba replay of RandomState's MT19937 + legacy Gaussian gives NumPy's exact numbers."""

from __future__ import annotations

import numpy as np
import pytest

from deepsif_assets.simulation.legacy_rng import (
    legacy_normals,
    state_from_random_state,
    state_to_random_state,
)


def test_tvb_step_draws_are_bit_identical_to_numpy():
    reference = np.random.RandomState(42)
    reference.uniform(-500, 500, size=(127, 998, 1))  # the history draws come first, as in TVB
    key, pos, gauss = state_from_random_state(reference)
    expected = reference.normal(size=(25, 6, 998, 1))  # 25 steps, ≥ one MT block boundary per step
    row4 = np.empty(998)
    for step in range(25):
        legacy_normals(key, pos, gauss, 6 * 998, 4 * 998, 5 * 998, row4)
        assert np.array_equal(row4, expected[step, 4, :, 0])
    # and the stream ends at the same position as NumPy's
    assert state_to_random_state(key, pos, gauss).random_sample() == reference.random_sample()


@pytest.mark.parametrize("trial", range(40))
def test_odd_blocks_cached_gaussians_and_subranges(trial):
    rng = np.random.default_rng(trial)
    reference = np.random.RandomState(int(rng.integers(0, 2**32)))
    reference.uniform(size=int(rng.integers(0, 700)))
    if trial % 2:
        reference.normal()  # leaves a cached Gaussian in the state
    key, pos, gauss = state_from_random_state(reference)
    for _ in range(4):
        n_total = int(rng.integers(1, 60))
        lo = int(rng.integers(0, n_total))
        hi = int(rng.integers(lo, n_total + 1))
        expected = reference.normal(size=n_total)
        out = np.full(max(hi - lo, 1), np.nan)
        legacy_normals(key, pos, gauss, n_total, lo, hi, out)
        assert np.array_equal(out[: hi - lo], expected[lo:hi])
    assert state_to_random_state(key, pos, gauss).normal() == reference.normal()


def test_too_small_output_buffer_is_refused():
    key, pos, gauss = state_from_random_state(np.random.RandomState(1))
    with pytest.raises(ValueError, match="too small"):
        legacy_normals(key, pos, gauss, 10, 0, 10, np.empty(5))
