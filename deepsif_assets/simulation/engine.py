"""JansenRit network engine (NumPy + numba) that reproduces stock tvb-library 2.10 for the same seed.

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

The compiled kernel is :mod:`.lanes` (K simulations in lock-step; :class:`FastJansenRitSimulator` here is its
one-lane form). The coupling sigmoid depends only on the source node's delayed y1 − y2, so it is evaluated once
per node and step when the state is written to the ring (with DeepSIF's constants it is the model's own
S(y1 − y2)); per target the delayed terms are summed in ascending source order. Two precisions
(:data:`.lanes.ENGINE_PRECISIONS`): ``"faithful"`` evaluates every sigmoid with libm ``exp`` (the same as TVB's
numba dfun), bit for bit the output of the previous single-lane engine (≈ 0.09–0.12 ms/step); ``"fast"``
(default) uses a vectorised exp (≤ 1.5 ulp, measured 1.03) and one exp for both y0 sigmoids, which changes the last
bits of a step only (over a whole region, a trace near the spike threshold can amplify them for a while and change
some clips: ``benchmarks/deepsif_clip_fidelity.py``).
Speed per simulated step: ``benchmarks/deepsif_lanes_benchmark.py``.

**Tolerance vs stock tvb-library (same seed)** — round-off only: TVB evaluates the coupling ``exp`` with NumPy's
SIMD exp (differs from libm's by 1 ulp for ≈ 5 % of arguments) and sums the 998 products of a row with NumPy's
pairwise summation. Asserted by tests/deepsif_assets/simulation/test_engine_parity.py for every sample (both
precisions): ``|Δ(y1 − y2)| ≤ PARITY_RTOL·|y_tvb| + PARITY_ATOL`` (1e-5 relative + 1e-4 mV) and ≥ 95 % of the
float32 samples bit-identical; the benchmark checks a whole 10-s segment (20,000 steps at dt 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .connectivity import Connectivity

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


class FastJansenRitSimulator:
    """One continuous simulation (one region, one iteration): a one-lane :class:`.lanes.LanesSimulator`.

    Call :meth:`run` once per segment (state carries over)."""

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
        precision: str | None = None,
        threads: int = 1,
    ) -> None:
        from .lanes import DEFAULT_PRECISION, Lane, LanesSimulator  # lanes imports this module

        a_per_node = np.ascontiguousarray(a_per_node, dtype=np.float64)
        if a_per_node.shape != (connectivity.n_nodes,):
            raise ValueError(f"A vector has shape {a_per_node.shape}, expected ({connectivity.n_nodes},)")
        self._lanes = LanesSimulator(
            connectivity,
            [Lane(a_per_node, float(mu), float(nsig_y4), int(seed))],
            dt=dt,
            conduction_speed=conduction_speed,
            constants=constants,
            precision=precision or DEFAULT_PRECISION,
            threads=threads,
        )
        self.n_nodes = connectivity.n_nodes
        self.dt = self._lanes.dt
        self.horizon = self._lanes.horizon
        self.precision = self._lanes.precision

    @property
    def current_step(self) -> int:
        return self._lanes.current_step

    @property
    def x(self) -> np.ndarray:
        """The (6, n) float64 state (y0..y5)."""
        return self._lanes.state(0)

    def run(self, n_steps: int, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``n_steps``; return (time (n_steps,) ms, y1 − y2 (n_steps, n) float32), time = step·dt."""
        if out is None:
            out = np.empty((n_steps, self.n_nodes), dtype=np.float32)
        elif out.shape != (n_steps, self.n_nodes) or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(
                f"out has shape {out.shape}/{out.dtype}, expected C-contiguous ({n_steps}, {self.n_nodes}) float32"
            )
        time, _ = self._lanes.run(n_steps, out=out.reshape(n_steps, self.n_nodes, 1))
        return time, out
