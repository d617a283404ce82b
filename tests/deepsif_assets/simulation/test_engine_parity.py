"""Fast engine vs stock tvb-library on the real connectivity_998, same seed.

Tolerance (also in ``engine.py``): |Δ(y1 − y2)| ≤ PARITY_RTOL·|y_tvb| + PARITY_ATOL, and most samples bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepsif_assets.simulation.connectivity import load_connectivity
from deepsif_assets.simulation.engine import PARITY_ATOL, PARITY_RTOL, FastJansenRitSimulator
from deepsif_assets.simulation.params import SimulationParams, a_vector, iteration_seed, noise_nsig
from deepsif_assets.simulation.tvb_reference import TvbJansenRitSimulator

MIN_BIT_IDENTICAL = 0.95


def _run_both(zip_path, *, dt, n_steps, iteration, excitable, seed, split=None):
    params = SimulationParams(dt=dt)
    a_per_node = a_vector(998, excitable, params)
    common = dict(dt=dt, seed=seed)
    nsig = noise_nsig(params, iteration)
    fast = FastJansenRitSimulator(
        load_connectivity(zip_path), a_per_node, params.mu[iteration], nsig, **common
    )
    tvb = TvbJansenRitSimulator(zip_path, a_per_node, params.mu[iteration], nsig, **common)
    assert fast.horizon == tvb.horizon
    parts = split or [n_steps]
    fast_chunks = [fast.run(p) for p in parts]  # chunked calls must not change anything
    t_fast = np.concatenate([c[0] for c in fast_chunks])
    y_fast = np.concatenate([c[1] for c in fast_chunks])
    t_tvb, y_tvb = tvb.run(n_steps)
    return t_fast, y_fast, t_tvb, y_tvb


def _assert_parity(t_fast, y_fast, t_tvb, y_tvb):
    assert y_fast.dtype == np.float32 and y_fast.shape == y_tvb.shape
    assert np.array_equal(t_fast, t_tvb)
    assert np.all(np.isfinite(y_fast))
    diff = np.abs(y_fast.astype(np.float64) - y_tvb.astype(np.float64))
    bound = PARITY_RTOL * np.abs(y_tvb.astype(np.float64)) + PARITY_ATOL
    worst = np.unravel_index(np.argmax(diff - bound), diff.shape)
    assert np.all(diff <= bound), f"max excess at step/node {worst}: |Δ|={diff[worst]}, y={y_tvb[worst]}"
    identical = float(np.mean(y_fast == y_tvb))
    assert identical >= MIN_BIT_IDENTICAL, identical
    # not a vacuous comparison: the run has the start-up transient and then physiological amplitudes
    assert np.abs(y_tvb).max() > 100.0
    return diff.max(), identical


def test_fast_matches_tvb_dt05_2000_steps(connectivity_998):
    t_fast, y_fast, t_tvb, y_tvb = _run_both(
        connectivity_998, dt=0.5, n_steps=2000, iteration=0, excitable=5, seed=42, split=[700, 1300]
    )
    assert t_tvb[0] == 0.5 and t_tvb[-1] == 1000.0
    max_diff, identical = _assert_parity(t_fast, y_fast, t_tvb, y_tvb)
    print(f"dt=0.5: max |Δ| = {max_diff:.3g} mV, bit-identical {identical:.4f}")


def test_fast_matches_tvb_dt1_per_region_seed(connectivity_998):
    params = SimulationParams(seed_policy="per_region_iteration", dt=1.0)
    seed = iteration_seed(params, region=321, iteration=2)
    assert seed != 42
    t_fast, y_fast, t_tvb, y_tvb = _run_both(
        connectivity_998, dt=1.0, n_steps=1000, iteration=2, excitable=321, seed=seed
    )
    max_diff, identical = _assert_parity(t_fast, y_fast, t_tvb, y_tvb)
    print(f"dt=1.0, seed {seed}: max |Δ| = {max_diff:.3g} mV, bit-identical {identical:.4f}")


def test_different_seeds_give_different_traces(connectivity_998):
    """Guards against the parity test passing trivially (e.g. seed ignored)."""
    params = SimulationParams()
    con = load_connectivity(connectivity_998)
    a_per_node = a_vector(998, 0, params)
    runs = [
        FastJansenRitSimulator(con, a_per_node, params.mu[0], noise_nsig(params, 0), dt=0.5, seed=s).run(50)[
            1
        ]
        for s in (42, 43)
    ]
    assert not np.allclose(runs[0], runs[1])


@pytest.mark.parametrize("bad_shape", [(997,), (998, 1)])
def test_a_vector_shape_is_checked(connectivity_998, bad_shape):
    with pytest.raises(ValueError, match="A vector"):
        FastJansenRitSimulator(
            load_connectivity(connectivity_998), np.ones(bad_shape), 0.08, 1e-4, dt=0.5, seed=1
        )
