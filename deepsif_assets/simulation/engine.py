"""Fast JansenRit network engine (NumPy + numba) that reproduces stock tvb-library 2.10 for the same seed.

Model, coupling, integrator and noise are exactly those of the original ``generate_tvb_data.py``:
``JansenRit`` (TVB 2.10 numba dfun), ``SigmoidalJansenRit(a)`` coupling with delays
``idelays = rint(tract_lengths / speed / dt)``, ``HeunStochastic`` with additive noise on y4 only, ``Raw`` monitor,
output y1 − y2 as float32. TVB's numerics are followed step by step:

* one legacy ``RandomState(seed)``; the initial history is drawn first, one ``uniform(lo, hi, (H, n, 1))`` per state
  variable y0..y5; the start state is ``history[0]``;
* ring buffer of H = max(idelays) + 1 slots: step s writes slot s mod H, a delay of d steps reads slot
  (s − 1 − d) mod H, so the first H steps read the random history;
* per step one ``normal(size=(6, n, 1))`` (all 6n draws consumed, row 4 used) — replayed bit-exactly in numba by
  :mod:`.legacy_rng`; the same noise enters the Heun predictor and corrector; the coupling is computed once per
  step and shared by both stages; float64 state, same operation order as TVB's dfun and Heun scheme.

Speed: the coupling sigmoid depends only on the source node's delayed y1 − y2, so it is evaluated once per node
and step when the state is written to the ring (the ring stores sigmoid values; with DeepSIF's constants it is the
model's own S(y1 − y2), so one ``exp`` serves both); the 35,730 non-zero weights, ordered by source node, gather
from a node-major ring (read almost sequentially) and scatter-add into the targets, so for every target the terms
are summed in ascending source order; edge indices are unsigned (numba then emits no negative-index handling per
load). The node update runs as a series of loops over the nodes that each write one array, so numba/LLVM
vectorises all of them (divisions included, ``error_model="numpy"``) except the six tight passes of independent
libm ``exp`` calls (≈ 1/3 of a step; the same libm exp as TVB's numba dfun, so the same bits). The legacy
Gaussians are replayed in compiled code (``log``/``sqrt`` only for row 4; Mersenne-Twister blocks that hold no
kept Gaussian are only counted). Measured ≈ 0.06 ms/step (CPU, one core, dt 0.5) vs ≈ 7–10 ms/step for stock
tvb-library (> 100×, ``benchmarks/deepsif_engine_benchmark.py``); the output is bit-for-bit that of the previous,
0.083 ms/step version.

**Tolerance vs stock tvb-library (same seed)** — round-off only: TVB evaluates the coupling ``exp`` with NumPy's
SIMD exp (differs from libm's, which numba uses, by 1 ulp for ≈ 5 % of arguments) and sums the 998 products of a
row with NumPy's pairwise summation. Asserted by tests/deepsif_assets/simulation/test_engine_parity.py for every
sample: ``|Δ(y1 − y2)| ≤ PARITY_RTOL·|y_tvb| + PARITY_ATOL`` (1e-5 relative + 1e-4 mV) and ≥ 95 % of the float32
samples bit-identical. Measured (2,000 steps at dt 0.5; 1,000 steps at dt 1.0, per-region seed): max |Δ| 2.4e-4 mV
(one or two float32 steps at 2,000–3,800 mV in the start-up transient), ≤ 3e-5 mV after it (values ≈ ±11 mV),
97.9–98.5 % of samples bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .connectivity import Connectivity
from .legacy_rng import legacy_normals, state_from_random_state

#: parity tolerance against stock tvb-library (see module docstring), asserted by the tests
PARITY_RTOL = 1e-5
PARITY_ATOL = 1e-4

#: JansenRit state-variable ranges (tvb-library 2.10 ``JansenRit.state_variable_range``), y0..y5
JR_STATE_RANGES = ((-1.0, 1.0), (-500.0, 500.0), (-50.0, 50.0), (-6.0, 6.0), (-20.0, 20.0), (-500.0, 500.0))


@dataclass(frozen=True)
class JansenRitConstants:
    """JansenRit and coupling constants; defaults are TVB's except v0 (DeepSIF: 6.0)."""

    B: float = 22.0
    a: float = 0.1
    b: float = 0.05
    v0: float = 6.0
    nu_max: float = 0.0025
    r: float = 0.56
    J: float = 135.0
    a_1: float = 1.0
    a_2: float = 0.8
    a_3: float = 0.25
    a_4: float = 0.25
    # SigmoidalJansenRit coupling
    cmin: float = 0.0
    cmax: float = 2.0 * 0.0025
    midpoint: float = 6.0
    cr: float = 0.56
    coupling_a: float = 1.0


def coupling_pre(y1_minus_y2: np.ndarray, k: JansenRitConstants) -> np.ndarray:
    """SigmoidalJansenRit ``pre`` with NumPy's exp, exactly as TVB (used for the random initial history)."""
    return k.cmin + (k.cmax - k.cmin) / (1.0 + np.exp(k.cr * (k.midpoint - y1_minus_y2)))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sigmoid(nu_max, r, v0, v):
    return 2.0 * nu_max / (1.0 + math.exp(r * (v0 - v)))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _jr_dfun(y0, y1, y2, y3, y4, y5, sigm_y1_y2, c, A, mu, k):
    """tvb-library 2.10 ``_numba_dfun_jr`` with the same operation order (local coupling 0).

    ``sigm_y1_y2`` = S(y1 − y2) is passed in (it is shared with the coupling ring); ``k`` = (nu_max, r, v0, a,
    a_1, a_2, a_3, a_4, b, B, J).
    """
    nu_max, r, v0, a, a_1, a_2, a_3, a_4, b, B, J = (
        k[0],
        k[1],
        k[2],
        k[3],
        k[4],
        k[5],
        k[6],
        k[7],
        k[8],
        k[9],
        k[10],
    )
    sigm_y0_1 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (a_1 * J * y0))))
    sigm_y0_3 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (a_3 * J * y0))))
    d3 = A * a * sigm_y1_y2 - 2.0 * a * y3 - a**2 * y0
    d4 = A * a * (mu + a_2 * J * sigm_y0_1 + c) - 2.0 * a * y4 - a**2 * y1
    d5 = B * b * (a_4 * J * sigm_y0_3) - 2.0 * b * y5 - b**2 * y2
    return y3, y4, y5, d3, d4, d5


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _exp_in_place(values):
    # a tight loop of independent libm calls (the only part of the node update that is not vectorised)
    for i in range(values.shape[0]):
        values[i] = math.exp(values[i])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sigmoid_of_exp_in_place(values, two_nu_max):
    # its own loop (one array) so that the divisions are vectorised
    for i in range(values.shape[0]):
        values[i] = two_nu_max / (1.0 + values[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _model_sigmoid_of_state(x, k, out):
    for i in range(x.shape[1]):
        out[i] = _sigmoid(k[0], k[1], k[2], x[1, i] - x[2, i])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gather_coupling(ring, base_slot, nnz_offsets, nnz_targets, nnz_weights, ca, coupling):
    """coupling[i] = a · Σ_j w_ij · pre_j(t − d_ij), edges ordered by source j (then by delay) so the ring is read
    almost sequentially; for each target i the terms are added in ascending j, as a row-wise sparse sum."""
    for i in range(coupling.shape[0]):
        coupling[i] = 0.0
    # unsigned indices: numba then emits no negative-index wraparound per load (≈ 1/3 of the loop's cost)
    base = np.uint64(base_slot)
    for e in range(nnz_offsets.shape[0]):
        coupling[nnz_targets[e]] += nnz_weights[e] * ring[base + nnz_offsets[e]]
    if ca != 1.0:
        for i in range(coupling.shape[0]):
            coupling[i] = ca * coupling[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _run_steps(
    x,
    s12,
    ring,
    horizon,
    first_step,
    n_steps,
    out,
    nnz_offsets,
    nnz_targets,
    nnz_weights,
    A,
    mu,
    k,
    cpl,
    dt,
    sqrt_dt,
    noise_gain,
    key,
    pos,
    gauss,
    z,
    coupling,
    scratch,
):
    """Integrate ``n_steps`` Heun-stochastic steps from global step ``first_step``; y1 − y2 into ``out`` (float32).

    ``x`` (6, n) float64 state, updated in place; ``s12`` (n,) the model sigmoid S(y1 − y2) of ``x``.
    ``ring`` (n·2H) float64, node-major: SigmoidalJansenRit ``pre`` of each stored state of node j at
    ``ring[j·2H + h]`` and again at ``h + H``, so a delay of d steps at ring base b reads ``ring[b + j·2H + H − d]``
    without a modulo. ``cpl`` = (a, shares_sigmoid, cmin,
    cmax, midpoint, r): when ``shares_sigmoid`` the coupling ``pre`` equals the model's S(y1 − y2) bit for bit
    (DeepSIF: v0 = midpoint = 6, r = 0.56, cmax − cmin = 2·nu_max, cmin = 0) and one ``exp`` serves both.
    """
    n = x.shape[1]
    ca, shares, cmin, cmax, midpoint, cr = cpl[0], cpl[1] != 0.0, cpl[2], cpl[3], cpl[4], cpl[5]
    nu_max, r, v0, a_1, a_3, J = k[0], k[1], k[2], k[4], k[6], k[10]
    two_nu_max = 2.0 * nu_max
    a, a_2, a_4, b, B = k[3], k[5], k[7], k[8], k[9]
    a_sq, b_sq = a**2, b**2  # as TVB's a**2, b**2
    for t in range(n_steps):
        step = first_step + t
        # coupling for this step: slot (step - 1 - d) mod H, computed once, shared by both Heun stages
        _gather_coupling(ring, (step - 1) % horizon, nnz_offsets, nnz_targets, nnz_weights, ca, coupling)
        # the step's normal(size=(6, n, 1)) draw; only row 4 (y4) carries noise
        legacy_normals(key, pos, gauss, 6 * n, 4 * n, 5 * n, z)
        wslot = step % horizon
        stride = 2 * horizon
        # The Heun step for all nodes as a series of loops over the nodes, each writing one array, so that
        # numba/LLVM vectorises all of them except the ``exp`` passes (tight loops of independent libm calls).
        # The operations and their order per node are exactly those of TVB's numba dfun and Heun scheme, so
        # the results are the same bits. JansenRit's drift: d0..d2 = y3..y5, and
        #   d3 = A·a·S(y1 − y2) − 2a·y3 − a²·y0
        #   d4 = A·a·(mu + a_2·J·S(a_1·J·y0) + c) − 2a·y4 − a²·y1
        #   d5 = B·b·(a_4·J·S(a_3·J·y0)) − 2b·y5 − b²·y2,   S(v) = 2·nu_max / (1 + exp(r·(v0 − v))).
        x0, x1, x2, x3, x4, x5 = x[0], x[1], x[2], x[3], x[4], x[5]
        sig01, sig03, sig12 = scratch[0], scratch[1], scratch[2]
        d3s, d4s, d5s = scratch[3], scratch[4], scratch[5]
        p0s, p1s, p2s, p3s, p4s, p5s = (
            scratch[6],
            scratch[7],
            scratch[8],
            scratch[9],
            scratch[10],
            scratch[11],
        )
        # predictor: drift at the current state (its S(y1 − y2) is s12)
        for i in range(n):
            sig01[i] = r * (v0 - (a_1 * J * x0[i]))
        for i in range(n):
            sig03[i] = r * (v0 - (a_3 * J * x0[i]))
        _exp_in_place(sig01)
        _exp_in_place(sig03)
        _sigmoid_of_exp_in_place(sig01, two_nu_max)
        _sigmoid_of_exp_in_place(sig03, two_nu_max)
        for i in range(n):
            z[i] = sqrt_dt * z[i] * noise_gain  # the step's noise on y4, used by both stages
        for i in range(n):
            d3s[i] = A[i] * a * s12[i] - 2.0 * a * x3[i] - a_sq * x0[i]
        for i in range(n):
            d4s[i] = A[i] * a * (mu + a_2 * J * sig01[i] + coupling[i]) - 2.0 * a * x4[i] - a_sq * x1[i]
        for i in range(n):
            d5s[i] = B * b * (a_4 * J * sig03[i]) - 2.0 * b * x5[i] - b_sq * x2[i]
        for i in range(n):
            p0s[i] = x0[i] + dt * x3[i]
        for i in range(n):
            p1s[i] = x1[i] + dt * x4[i]
        for i in range(n):
            p2s[i] = x2[i] + dt * x5[i]
        for i in range(n):
            p3s[i] = x3[i] + dt * d3s[i]
        for i in range(n):
            p4s[i] = x4[i] + dt * d4s[i] + z[i]
        for i in range(n):
            p5s[i] = x5[i] + dt * d5s[i]
        # corrector: drift at the predicted state (d0..d2 of it = p3..p5), same noise
        for i in range(n):
            sig01[i] = r * (v0 - (a_1 * J * p0s[i]))
        for i in range(n):
            sig03[i] = r * (v0 - (a_3 * J * p0s[i]))
        for i in range(n):
            sig12[i] = r * (v0 - (p1s[i] - p2s[i]))
        _exp_in_place(sig01)
        _exp_in_place(sig03)
        _exp_in_place(sig12)
        _sigmoid_of_exp_in_place(sig01, two_nu_max)
        _sigmoid_of_exp_in_place(sig03, two_nu_max)
        _sigmoid_of_exp_in_place(sig12, two_nu_max)
        for i in range(n):
            x0[i] = x0[i] + (x3[i] + p3s[i]) * dt / 2.0
        for i in range(n):
            x1[i] = x1[i] + (x4[i] + p4s[i]) * dt / 2.0
        for i in range(n):
            x2[i] = x2[i] + (x5[i] + p5s[i]) * dt / 2.0
        for i in range(n):
            e3 = A[i] * a * sig12[i] - 2.0 * a * p3s[i] - a_sq * p0s[i]
            x3[i] = x3[i] + (d3s[i] + e3) * dt / 2.0
        for i in range(n):
            e4 = A[i] * a * (mu + a_2 * J * sig01[i] + coupling[i]) - 2.0 * a * p4s[i] - a_sq * p1s[i]
            x4[i] = x4[i] + (d4s[i] + e4) * dt / 2.0 + z[i]
        for i in range(n):
            e5 = B * b * (a_4 * J * sig03[i]) - 2.0 * b * p5s[i] - b_sq * p2s[i]
            x5[i] = x5[i] + (d5s[i] + e5) * dt / 2.0
        for i in range(n):
            diff = x1[i] - x2[i]
            out[t, i] = np.float32(diff)
            sig12[i] = r * (v0 - diff)
        _exp_in_place(sig12)
        for i in range(n):
            s12[i] = two_nu_max / (1.0 + sig12[i])
        # the new state's coupling ``pre`` into the ring
        if shares:
            for i in range(n):
                ring[i * stride + wslot] = s12[i]
                ring[i * stride + wslot + horizon] = s12[i]
        else:
            for i in range(n):
                diff = x1[i] - x2[i]
                pre = cmin + (cmax - cmin) / (1.0 + math.exp(cr * (midpoint - diff)))
                ring[i * stride + wslot] = pre
                ring[i * stride + wslot + horizon] = pre


class FastJansenRitSimulator:
    """One continuous simulation (one region, one iteration); call :meth:`run` once per segment."""

    def __init__(
        self,
        connectivity: Connectivity,
        a_per_node: np.ndarray,
        mu: float,
        nsig_y4: float,
        *,
        dt: float,
        seed: int,
        conduction_speed: float = 3.0,
        constants: JansenRitConstants | None = None,
    ) -> None:
        k = constants or JansenRitConstants()
        n = connectivity.n_nodes
        a_per_node = np.ascontiguousarray(a_per_node, dtype=np.float64)
        if a_per_node.shape != (n,):
            raise ValueError(f"A vector has shape {a_per_node.shape}, expected ({n},)")
        self.n_nodes = n
        self.dt = float(dt)
        idelays = connectivity.idelays(self.dt, conduction_speed)
        self.horizon = int(idelays.max()) + 1
        weights = connectivity.weights
        rows, cols = np.nonzero(weights)
        nnz_delays = idelays[rows, cols].astype(np.int64)
        order = np.lexsort((-nnz_delays, cols))  # by source j, then by ring position (delay descending)
        # compact unsigned index types: less memory traffic per step (offsets < n·2H, targets < n), and no
        # negative-index handling in the compiled gather
        self._nnz_offsets = (cols * 2 * self.horizon + self.horizon - nnz_delays)[order].astype(np.uint32)
        self._nnz_targets = rows[order].astype(np.uint16 if n < 2**16 else np.uint32)
        self._nnz_weights = weights[rows, cols].astype(np.float64)[order]

        # random initial history, drawn first from the noise stream, as TVB's Model.initial
        rs = np.random.RandomState(seed)
        history = np.empty((self.horizon, 6, n))
        for sv, (lo, hi) in enumerate(JR_STATE_RANGES):
            history[:, sv] = rs.uniform(low=lo, high=hi, size=(self.horizon, n, 1))[..., 0]
        self.x = history[0].copy()
        pre = coupling_pre(history[:, 1] - history[:, 2], k).T  # (n, H)
        self._ring = np.ascontiguousarray(np.concatenate([pre, pre], axis=1)).reshape(-1)
        self._key, self._pos, self._gauss = state_from_random_state(rs)

        self._A = a_per_node
        self._mu = float(mu)
        self._k = np.array(
            [k.nu_max, k.r, k.v0, k.a, k.a_1, k.a_2, k.a_3, k.a_4, k.b, k.B, k.J], dtype=np.float64
        )
        shares = k.cmin == 0.0 and k.cmax - k.cmin == 2.0 * k.nu_max and k.cr == k.r and k.midpoint == k.v0
        self._cpl = np.array(
            [k.coupling_a, float(shares), k.cmin, k.cmax, k.midpoint, k.cr], dtype=np.float64
        )
        self._s12 = np.empty(n)
        _model_sigmoid_of_state(self.x, self._k, self._s12)
        self._sqrt_dt = float(np.sqrt(self.dt))
        self._noise_gain = float(np.sqrt(2.0 * np.float64(nsig_y4)))
        self._z = np.empty(n)
        self._coupling = np.empty(n)
        self._scratch = np.empty((12, n))  # per-step work rows: exp arguments/values, drift, predictor
        self.current_step = 0

    def run(self, n_steps: int, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``n_steps``; return (time (n_steps,) ms, y1 − y2 (n_steps, n) float32), time = step·dt."""
        if out is None:
            out = np.empty((n_steps, self.n_nodes), dtype=np.float32)
        elif out.shape != (n_steps, self.n_nodes) or out.dtype != np.float32:
            raise ValueError(
                f"out has shape {out.shape}/{out.dtype}, expected ({n_steps}, {self.n_nodes}) float32"
            )
        first = self.current_step + 1
        _run_steps(
            self.x,
            self._s12,
            self._ring,
            self.horizon,
            first,
            n_steps,
            out,
            self._nnz_offsets,
            self._nnz_targets,
            self._nnz_weights,
            self._A,
            self._mu,
            self._k,
            self._cpl,
            self.dt,
            self._sqrt_dt,
            self._noise_gain,
            self._key,
            self._pos,
            self._gauss,
            self._z,
            self._coupling,
            self._scratch,
        )
        self.current_step += n_steps
        time = np.arange(first, first + n_steps, dtype=np.float64) * self.dt
        return time, out
