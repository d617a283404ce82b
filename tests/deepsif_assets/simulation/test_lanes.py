"""Lock-step lanes: a lane's output is independent of its batch and threads; faithful = the old engine's bits;
shared random stream verified against stock tvb-library and a plain NumPy re-derivation of TVB's scheme."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from deepsif_assets.simulation.connectivity import load_connectivity
from deepsif_assets.simulation.engine import (
    JR_STATE_RANGES,
    PARITY_ATOL,
    PARITY_RTOL,
    FastJansenRitSimulator,
    JansenRitConstants,
)
from deepsif_assets.simulation.lanes import (
    AVX2_NUMBA_TARGET,
    ENGINE_PRECISIONS,
    FAST_EXP_MAX_ULP,
    VECTOR_WIDTH,
    Lane,
    LanesSimulator,
    exp_fast_array,
)
from deepsif_assets.simulation.params import SimulationParams, a_vector, iteration_seed, noise_nsig
from deepsif_assets.simulation.tvb_reference import TvbJansenRitSimulator
from neuro_core.project import PROJECT_ROOT

PARAMS = SimulationParams()


@pytest.fixture(scope="module")
def con(connectivity_998):
    return load_connectivity(connectivity_998)


def _lane(region: int, m: int, params: SimulationParams = PARAMS) -> Lane:
    return Lane(
        a_vector(998, region, params), params.mu[m], noise_nsig(params, m), iteration_seed(params, region, m)
    )


def _run(con, lanes, steps, *, precision="fast", threads=1, split=(), dt=0.5):
    sim = LanesSimulator(con, lanes, dt=dt, precision=precision, threads=threads)
    parts = [*split, steps - sum(split)]
    ys = [sim.run(p)[1] for p in parts]
    return np.concatenate(ys), sim


# --- precision "faithful" = the single-lane engine before the lanes (commit 6f7d639), bit for bit -------------
# sha256 of its float32 output and final float64 state, computed with that engine on this project's machine kind
# (glibc libm exp); (dt, excitable node, iteration, seed policy, steps)
OLD_ENGINE_DIGESTS = {
    (0.5, 5, 1, "fixed", 600): ("a3d44ffad6c5bdae", "c69eb2ac233b2187"),
    (1.0, 321, 2, "per_region_iteration", 300): ("703639481b2c7e5e", "29fffa66a773fff9"),
}


@pytest.mark.parametrize("case", sorted(OLD_ENGINE_DIGESTS))
def test_faithful_is_bitwise_the_old_single_lane_engine(con, case):
    dt, excitable, m, policy, steps = case
    params = SimulationParams(dt=dt, seed_policy=policy)
    seed = iteration_seed(params, 321 if policy != "fixed" else 0, m)
    lane = Lane(a_vector(998, excitable, params), params.mu[m], noise_nsig(params, m), seed)
    # in a batch with two other lanes, chunked: neither may change the lane's bits
    other = [_lane(40, 0, params), Lane(a_vector(998, 7, params), 0.09, 1e-5, seed + 1)]
    y, sim = _run(con, [other[0], lane, other[1]], steps, precision="faithful", split=(7, 250), dt=dt)
    digest_y = hashlib.sha256(np.ascontiguousarray(y[:, :, 1]).tobytes()).hexdigest()[:16]
    digest_x = hashlib.sha256(np.ascontiguousarray(sim.state(1)).tobytes()).hexdigest()[:16]
    assert (digest_y, digest_x) == OLD_ENGINE_DIGESTS[case]


# --- a lane does not depend on K, on the other lanes, on chunking or on threads -------------------------------


@pytest.mark.parametrize("precision", ENGINE_PRECISIONS)
@pytest.mark.parametrize("policy", ["fixed", "per_region_iteration"])
def test_lane_is_independent_of_batch_and_threads(con, precision, policy):
    params = SimulationParams(seed_policy=policy)
    specs = [(5, 0), (5, 1), (5, 2), (994, 1), (300, 0)]
    lanes = [_lane(r, m, params) for r, m in specs]
    steps = 120
    batch, _ = _run(con, lanes, steps, precision=precision, split=(33,))
    assert len({lane.seed for lane in lanes}) == (1 if policy == "fixed" else 5)
    for i, lane in enumerate(lanes):
        alone, _ = _run(con, [lane], steps, precision=precision)
        assert np.array_equal(batch[:, :, i], alone[:, :, 0]), (i, precision, policy)
    # another composition and order, two threads
    subset = [lanes[3], lanes[0]]
    threaded, _ = _run(con, subset, steps, precision=precision, threads=2, split=(5, 6))
    assert np.array_equal(threaded[:, :, 0], batch[:, :, 3])
    assert np.array_equal(threaded[:, :, 1], batch[:, :, 0])
    # the lanes really differ (the test cannot pass on identical traces)
    assert not np.array_equal(batch[:, :, 0], batch[:, :, 1])


def fast_output_digest(connectivity_zip) -> str:
    """sha256 of five fast lanes' output and state after 150 steps (n·K = 4,990: whole vectors and a scalar
    remainder at either width)."""
    lanes = [_lane(r, m) for r, m in [(5, 0), (5, 1), (5, 2), (994, 1), (300, 0)]]
    y, sim = _run(load_connectivity(connectivity_zip), lanes, 150, precision="fast")
    states = np.stack([sim.state(lane) for lane in range(len(lanes))])
    return hashlib.sha256(y.tobytes() + states.tobytes()).hexdigest()


@pytest.mark.skipif(VECTOR_WIDTH == 4, reason="this machine compiles the node update four values wide already")
def test_node_update_gives_the_same_bits_at_both_vector_widths(connectivity_998):
    """The AVX-512 node update (eight values per vector) against the AVX2 one (four), compiled in a child
    process for an AVX2 target: the same operations per value, so the same bits."""
    script = (
        "import sys; from deepsif_assets.simulation.lanes import VECTOR_WIDTH; "
        "from tests.deepsif_assets.simulation.test_lanes import fast_output_digest; "
        "print(VECTOR_WIDTH, fast_output_digest(sys.argv[1]))"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(connectivity_998)],
        env={**os.environ, **AVX2_NUMBA_TARGET},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    width, digest = child.stdout.split()
    assert (int(width), VECTOR_WIDTH) == (4, 8)
    assert digest == fast_output_digest(connectivity_998)


def test_fast_differs_from_faithful_only_in_round_off(con):
    lanes = [_lane(5, 0), _lane(5, 1)]
    fast, sim_fast = _run(con, lanes, 400, precision="fast")
    faithful, sim_faithful = _run(con, lanes, 400, precision="faithful")
    diff = np.abs(fast.astype(np.float64) - faithful)
    assert np.all(diff <= PARITY_RTOL * np.abs(faithful.astype(np.float64)) + PARITY_ATOL)
    assert not np.array_equal(sim_fast.state(0), sim_faithful.state(0))  # the float64 state does differ


# --- the vectorised exp ---------------------------------------------------------------------------------------


def test_fast_exp_is_within_its_ulp_bound_and_never_inf_or_nan():
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [rng.uniform(-0.5, 0.5, 200_000), rng.uniform(-60, 60, 200_000), rng.uniform(-708, 708, 200_000)]
    )
    x = np.concatenate([x, [0.0, -0.0, 708.0, -708.0, 1e-300, np.log(2) / 2, -np.log(2) / 2]])
    got = exp_fast_array(x)
    reference = np.exp(x.astype(np.longdouble))  # 64-bit mantissa: an exact enough reference for float64
    ulps = np.abs((got.astype(np.longdouble) - reference) / np.spacing(reference.astype(np.float64)))
    assert float(ulps.max()) <= FAST_EXP_MAX_ULP
    assert np.mean(got == np.exp(x)) > 0.85  # mostly the same bits as NumPy's exp
    beyond = exp_fast_array(np.array([709.0, 1e5, -746.0, -1e5]))
    assert np.all(np.isfinite(beyond))
    assert beyond[0] == beyond[1] == exp_fast_array(np.array([708.0]))[0]
    assert beyond[2] == beyond[3] < 1e-307


# --- the shared random stream: two tvb runs with seed 42 = two lanes of one batch -----------------------------


def test_shared_stream_lanes_match_two_stock_tvb_runs(connectivity_998, con):
    steps = 260  # the tvb reference is slow (≈ 12 ms/step); the benchmark compares a whole 10-s segment
    specs = [(5, 0), (994, 2)]  # different excitable node, mu and noise_std; both seed 42
    lanes = [_lane(r, m) for r, m in specs]
    assert {lane.seed for lane in lanes} == {42}
    batch, sim = _run(con, lanes, steps)
    assert sim.n_streams == 1  # one replay of the stream feeds both lanes
    for i, lane in enumerate(lanes):
        tvb = TvbJansenRitSimulator(connectivity_998, lane.a_per_node, lane.mu, lane.nsig_y4, dt=0.5, seed=42)
        _, y_tvb = tvb.run(steps)
        y = batch[:, :, i].astype(np.float64)
        diff = np.abs(y - y_tvb)
        assert np.all(diff <= PARITY_RTOL * np.abs(y_tvb.astype(np.float64)) + PARITY_ATOL), (i, diff.max())
        assert np.mean(batch[:, :, i] == y_tvb) > 0.95
    assert np.abs(batch[:, :, 0] - batch[:, :, 1]).max() > 1.0  # different simulations


# --- an independent NumPy re-derivation of TVB's scheme (dense delays, RandomState draws) ----------------------


def _numpy_tvb(con, lane: Lane, steps: int, dt: float = 0.5) -> np.ndarray:
    """TVB 2.10's JansenRit + SigmoidalJansenRit + HeunStochastic written directly in NumPy."""
    k = JansenRitConstants()
    n = con.n_nodes
    idelays = con.idelays(dt, 3.0)
    horizon = int(idelays.max()) + 1
    rs = np.random.RandomState(lane.seed)
    history = np.empty((horizon, 6, n))
    for sv, (lo, hi) in enumerate(JR_STATE_RANGES):
        history[:, sv] = rs.uniform(low=lo, high=hi, size=(horizon, n, 1))[..., 0]
    y1_y2 = history[:, 1] - history[:, 2]  # ring of y1 − y2 (H, n)
    x = history[0].copy()
    cols = np.broadcast_to(np.arange(n), (n, n))
    a_, big_a, b_, big_b, j_ = k.a, lane.a_per_node, k.b, k.B, k.J

    def sig(v):
        return 2.0 * k.nu_max / (1.0 + np.exp(k.r * (k.v0 - v)))

    def dfun(s, c):
        y0, y1, y2, y3, y4, y5 = s
        return np.stack(
            [
                y3,
                y4,
                y5,
                big_a * a_ * sig(y1 - y2) - 2.0 * a_ * y3 - a_**2 * y0,
                big_a * a_ * (lane.mu + k.a_2 * j_ * sig(k.a_1 * j_ * y0) + c) - 2.0 * a_ * y4 - a_**2 * y1,
                big_b * b_ * (k.a_4 * j_ * sig(k.a_3 * j_ * y0)) - 2.0 * b_ * y5 - b_**2 * y2,
            ]
        )

    out = np.empty((steps, n), dtype=np.float32)
    gain = np.sqrt(2.0 * lane.nsig_y4)
    np_errors = np.seterr(
        over="ignore"
    )  # exp overflows to inf in the start-up transient (sigmoid → 0), as TVB
    for step in range(1, steps + 1):
        delayed = y1_y2[(step - 1 - idelays) % horizon, cols]  # (target, source)
        pre = k.cmin + (k.cmax - k.cmin) / (1.0 + np.exp(k.cr * (k.midpoint - delayed)))
        c = k.coupling_a * (con.weights * pre).sum(axis=1)
        noise = np.zeros((6, n))
        noise[4] = np.sqrt(dt) * rs.normal(size=(6, n, 1))[4, :, 0] * gain
        d1 = dfun(x, c)
        predicted = x + dt * d1 + noise
        x = x + (d1 + dfun(predicted, c)) * dt / 2.0 + noise
        y1_y2[step % horizon] = x[1] - x[2]
        out[step - 1] = x[1] - x[2]
    np.seterr(**np_errors)
    return out


def test_lanes_match_an_independent_numpy_derivation(con):
    steps = 135  # > the horizon of 127 steps: the ring wraps and random-history reads are all exercised
    params = SimulationParams(seed_policy="per_region_iteration")
    lanes = [_lane(5, 1), _lane(60, 2, params)]
    batch, _ = _run(con, lanes, steps, split=(64,))
    for i, lane in enumerate(lanes):
        ref = _numpy_tvb(con, lane, steps).astype(np.float64)
        diff = np.abs(batch[:, :, i] - ref)
        assert np.all(diff <= PARITY_RTOL * np.abs(ref) + PARITY_ATOL), (i, diff.max())


def test_bad_lane_arguments(con):
    with pytest.raises(ValueError, match="precision"):
        LanesSimulator(con, [_lane(1, 0)], dt=0.5, precision="bf16")
    with pytest.raises(ValueError, match="threads"):
        LanesSimulator(con, [_lane(1, 0)], dt=0.5, threads=0)
    with pytest.raises(ValueError, match="at least one lane"):
        LanesSimulator(con, [], dt=0.5)
    with pytest.raises(ValueError, match="A vector"):
        LanesSimulator(con, [Lane(np.ones(997), 0.08, 1e-4, 1)], dt=0.5)
    with pytest.raises(ValueError, match="out has shape"):
        LanesSimulator(con, [_lane(1, 0)], dt=0.5).run(5, out=np.empty((5, 998), np.float32))


def test_one_lane_wrapper_keeps_the_engine_interface(con):
    fast = FastJansenRitSimulator(
        con, a_vector(998, 3, PARAMS), 0.087, noise_nsig(PARAMS, 0), dt=0.5, seed=42
    )
    time_ms, y = fast.run(10)
    assert y.shape == (10, 998) and y.dtype == np.float32 and fast.current_step == 10
    assert np.array_equal(time_ms, np.arange(1, 11) * 0.5) and fast.x.shape == (6, 998)
    lanes, _ = _run(con, [_lane(3, 0)], 10)
    assert np.array_equal(lanes[:, :, 0], y)
