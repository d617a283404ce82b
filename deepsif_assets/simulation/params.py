"""Simulation constants of the original ``generate_tvb_data.py`` (all configurable) and the fs → TVB node mapping.

The 994 cortical (fsaverage5) regions and the 998 TVB nodes differ in four places (spec §4.10): fs regions 7, 325,
921 and 949 are the left transverse-temporal TVB nodes 994..997. ``FS_TO_TVB[c]`` is the TVB node whose activity
belongs in fs column ``c``. By default region ``r`` excites TVB node ``FS_TO_TVB[r]`` (consistent with the lead
field); ``faithful_remap=True`` reproduces the original, which excites TVB node ``r``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

N_FS_REGIONS = 994
N_TVB_NODES = 998

#: fs region -> TVB node (0-based), spec §4.10; MATLAB ``[8,326,922,950] <- [995,998,997,996]`` (1-based).
_REMAPPED = {7: 994, 325: 997, 921: 996, 949: 995}
FS_TO_TVB: np.ndarray = np.arange(N_FS_REGIONS, dtype=np.int64)
for _fs, _tvb in _REMAPPED.items():
    FS_TO_TVB[_fs] = _tvb
FS_TO_TVB.setflags(write=False)

SEED_POLICIES = ("fixed", "per_region_iteration")


class SimulationParamsError(ValueError):
    """A simulation parameter is out of its valid range."""


@dataclass(frozen=True)
class SimulationParams:
    """Every constant of the original simulation; defaults = original configuration (spec §4.3–§4.8)."""

    dt: float = 0.5  # ms, HeunStochastic step
    segment_ms: float = 10_000.0  # simulated time per ``run`` call (one raw file)
    n_segments: int = 20
    iterations: tuple[int, ...] = (0, 1, 2)
    mu: tuple[float, ...] = (0.087, 0.08, 0.083)  # JansenRit mu per iteration m
    noise_std: tuple[float, ...] = (1.0, 1.7, 1.5)  # noise-std multiplier per iteration m
    a_base: float = 3.25  # JansenRit A everywhere ...
    a_excitable: float = 3.5  # ... except at the excitable node
    v0: float = 6.0
    p_max: float = 0.15  # only used for the noise amplitude
    p_min: float = 0.03
    noise_a_const: float = 3.25  # the hard-coded 3.25 of the nsig formula (not the model's A)
    coupling_a: float = 1.0  # SigmoidalJansenRit(a)
    conduction_speed: float = 3.0  # mm/ms (TVB default)
    seed_policy: str = "fixed"  # "fixed": RandomState(seed) per iteration as TVB; or "per_region_iteration"
    seed: int = 42
    faithful_remap: bool = False  # True: excite TVB node r (original); False: excite TVB node FS_TO_TVB[r]
    transient_samples: int = 1000  # raw samples dropped before decimation (MATLAB constant)
    downsample_factor: int = 4
    n_fs_regions: int = N_FS_REGIONS

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`SimulationParamsError` naming the first bad value."""

        def bad(name: str, expected: str) -> SimulationParamsError:
            return SimulationParamsError(
                f"SimulationParams.{name}={getattr(self, name)!r} is invalid: expected {expected}"
            )

        for name in ("dt", "segment_ms", "v0", "conduction_speed", "a_base", "a_excitable", "noise_a_const"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise bad(name, "a finite number > 0")
        steps = self.segment_ms / self.dt
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
            raise bad("segment_ms", f"a whole multiple of dt={self.dt}")
        for name in ("n_segments", "downsample_factor"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "an integer ≥ 1")
        if not isinstance(self.transient_samples, int) or self.transient_samples < 0:
            raise bad("transient_samples", "an integer ≥ 0")
        if self.transient_samples >= self.total_steps:
            raise bad(
                "transient_samples", f"fewer than the {self.total_steps} simulated samples per iteration"
            )
        if len(self.mu) != len(self.noise_std) or not self.mu:
            raise bad("mu", f"a non-empty tuple as long as noise_std ({len(self.noise_std)})")
        if not self.iterations or len(set(self.iterations)) != len(self.iterations):
            raise bad("iterations", "a non-empty tuple of distinct iteration indices")
        for m in self.iterations:
            if not isinstance(m, (int, np.integer)) or not 0 <= m < len(self.mu):
                raise bad("iterations", f"indices in 0..{len(self.mu) - 1} (one per mu/noise_std entry)")
        if any(not math.isfinite(s) or s < 0 for s in self.noise_std):
            raise bad("noise_std", "finite values ≥ 0")
        if any(not math.isfinite(v) for v in self.mu):
            raise bad("mu", "finite values")
        if self.seed_policy not in SEED_POLICIES:
            raise bad("seed_policy", f"one of {SEED_POLICIES}")
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**32:
            raise bad("seed", "an integer in 0 .. 2**32-1")
        if not math.isfinite(self.coupling_a):
            raise bad("coupling_a", "a finite number")

    @property
    def steps_per_segment(self) -> int:
        return round(self.segment_ms / self.dt)

    @property
    def total_steps(self) -> int:
        return self.steps_per_segment * self.n_segments

    @property
    def n_decimated(self) -> int:
        """Rows of the compact ``all_data``: ceil((total − transient) / factor), as MATLAB ``downsample``."""
        return -(-(self.total_steps - self.transient_samples) // self.downsample_factor)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["iterations"] = list(self.iterations)
        out["mu"] = list(self.mu)
        out["noise_std"] = list(self.noise_std)
        return out


def check_region(region: int, n_fs_regions: int = N_FS_REGIONS) -> int:
    """Validate a cortical region id (0-based)."""
    if (
        isinstance(region, bool)
        or not isinstance(region, (int, np.integer))
        or not 0 <= region < n_fs_regions
    ):
        raise SimulationParamsError(
            f"region {region!r} is out of range: expected an integer 0 ≤ region < {n_fs_regions}"
        )
    return int(region)


def excitable_tvb_node(region: int, params: SimulationParams) -> int:
    """The TVB node whose A is raised for cortical region ``region`` (see module docstring)."""
    region = check_region(region, params.n_fs_regions)
    return region if params.faithful_remap else int(FS_TO_TVB[region])


def noise_nsig(params: SimulationParams, iteration: int) -> float:
    """nsig of the y4 equation, computed as the original: (a·3.25·(p_max − p_min)·0.5·std_m)² / 2 (spec §4.4).

    Evaluated with 1-element float64 arrays in the original's operation order, then converted to a Python float
    (the numpy-2 fix), so both engines use the very same number.
    """
    jr_a = np.array([0.1])  # JansenRit.a (1/ms), TVB default, not changed by DeepSIF
    value = (
        jr_a
        * params.noise_a_const
        * (np.array([params.p_max]) - np.array([params.p_min]))
        * 0.5
        * params.noise_std[iteration]
    ) ** 2 / 2.0
    return float(value[0])


def iteration_seed(params: SimulationParams, region: int, iteration: int) -> int:
    """Seed of the legacy RandomState used for iteration ``iteration`` of ``region``.

    ``fixed``: ``params.seed`` for every region and iteration (TVB's behaviour, 42 by default).
    ``per_region_iteration``: a 32-bit seed derived from (seed, region, iteration) with ``numpy.random.SeedSequence``.
    """
    if params.seed_policy == "fixed":
        return int(params.seed)
    return int(np.random.SeedSequence([int(params.seed), int(region), int(iteration)]).generate_state(1)[0])


def a_vector(n_nodes: int, excitable_node: int, params: SimulationParams) -> np.ndarray:
    """JansenRit A per TVB node: ``a_base`` everywhere, ``a_excitable`` at ``excitable_node``."""
    a = np.full(n_nodes, params.a_base, dtype=np.float64)
    a[excitable_node] = params.a_excitable
    return a
