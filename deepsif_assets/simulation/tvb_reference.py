"""Reference engine: stock tvb-library configured exactly like the original ``generate_tvb_data.py``.

Differences from the original script, all deliberate: the nsig entry is assigned a Python float (the numpy-2 fix), output is collected step by step as float32 y1 − y2 instead of the float64 (T, 4, n, 1) Raw array (same
numbers, bounded memory), and TVB's harmless overflow ``RuntimeWarning``s are filtered. tvb is imported lazily.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .engine import JansenRitConstants


class TvbJansenRitSimulator:
    """Stock ``tvb.simulator`` run; same interface as :class:`.engine.FastJansenRitSimulator`."""

    def __init__(
        self,
        connectivity_zip: str | Path,
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Geodesic distance module is unavailable"
            from tvb.datatypes import connectivity as tvb_connectivity
            from tvb.simulator import coupling, integrators, models, monitors, noise, simulator

        con = tvb_connectivity.Connectivity.from_file(str(Path(connectivity_zip).absolute()))
        con.speed = np.array([float(conduction_speed)])
        model = models.JansenRit(
            A=np.asarray(a_per_node, dtype=np.float64),
            B=np.array([k.B]),
            a=np.array([k.a]),
            b=np.array([k.b]),
            v0=np.array([k.v0]),
            nu_max=np.array([k.nu_max]),
            r=np.array([k.r]),
            J=np.array([k.J]),
            a_1=np.array([k.a_1]),
            a_2=np.array([k.a_2]),
            a_3=np.array([k.a_3]),
            a_4=np.array([k.a_4]),
            mu=np.array([float(mu)]),
        )
        nsig = np.zeros(6)
        nsig[4] = float(nsig_y4)  # the numpy-2 fix: a Python float, not a 1-element array
        cpl = coupling.SigmoidalJansenRit(
            a=np.array([k.coupling_a]),
            cmin=np.array([k.cmin]),
            cmax=np.array([k.cmax]),
            midpoint=np.array([k.midpoint]),
            r=np.array([k.cr]),
        )
        integrator = integrators.HeunStochastic(
            dt=float(dt), noise=noise.Additive(nsig=nsig, noise_seed=int(seed))
        )
        self._sim = simulator.Simulator(
            model=model,
            connectivity=con,
            coupling=cpl,
            integrator=integrator,
            monitors=(monitors.Raw(),),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self._sim.configure()
        self.n_nodes = int(con.number_of_regions)
        self.dt = float(dt)
        self.horizon = int(con.horizon)
        self.current_step = 0

    def run(self, n_steps: int, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``n_steps`` with ``simulation_length = n_steps·dt`` (state carries over, as the original)."""
        if out is None:
            out = np.empty((n_steps, self.n_nodes), dtype=np.float32)
        time = np.empty(n_steps)
        t = 0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning)
            for ((sample_time, sample),) in self._sim(simulation_length=n_steps * self.dt):
                time[t] = sample_time
                out[t] = sample[1, :, 0] - sample[2, :, 0]  # y1 - y2 in float64, then cast to float32
                t += 1
        if t != n_steps:
            raise RuntimeError(f"tvb-library returned {t} samples, expected {n_steps}")
        self.current_step += n_steps
        return time, out
