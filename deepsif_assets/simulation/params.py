"""Simulation constants of the original ``generate_tvb_data.py`` (all configurable) and the fs → TVB node mapping.

The 994 cortical (fsaverage5) regions and the 998 TVB nodes differ in four places: fs regions 7, 325,
921 and 949 are the left transverse-temporal TVB nodes 994..997. ``FS_TO_TVB[c]`` is the TVB node whose activity
belongs in fs column ``c``. By default region ``r`` excites TVB node ``FS_TO_TVB[r]`` (consistent with the lead
field); ``faithful_remap=True`` reproduces the original, which excites TVB node ``r``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuro_core.params import ParamError, check_param_ranges, param, params_dict

N_FS_REGIONS = 994
N_TVB_NODES = 998

#: fs region -> TVB node (0-based); the original's MATLAB ``[8,326,922,950] <- [995,998,997,996]`` (1-based).
_REMAPPED = {7: 994, 325: 997, 921: 996, 949: 995}
FS_TO_TVB: np.ndarray = np.arange(N_FS_REGIONS, dtype=np.int64)
for _fs, _tvb in _REMAPPED.items():
    FS_TO_TVB[_fs] = _tvb
FS_TO_TVB.setflags(write=False)

SEED_POLICIES = ("fixed", "per_region_iteration")


class SimulationParamsError(ParamError):
    """A simulation parameter is out of its valid range."""


@dataclass(frozen=True)
class SimulationParams:
    """Every constant of the original ``generate_tvb_data.py``; the defaults are the original configuration.

    The BrainForge variant is ``dt=1.0, n_segments=10, segment_ms=5000``.
    """

    dt: float = param(0.5, "HeunStochastic integration step", gt=0, unit="ms")
    segment_ms: float = param(10_000.0, "simulated time per segment (one raw file)", gt=0, unit="ms")
    n_segments: int = param(20, "segments per iteration", ge=1, flag="--segments")
    iterations: tuple[int, ...] = param((0, 1, 2), "noise settings m to simulate (index into mu and noise_std)", ge=0)
    mu: tuple[float, ...] = param((0.087, 0.08, 0.083), "JansenRit mu per iteration m", cli=False)
    noise_std: tuple[float, ...] = param((1.0, 1.7, 1.5), "noise std multiplier per iteration m", ge=0, cli=False)
    a_base: float = param(3.25, "JansenRit A everywhere but the excitable node", gt=0, unit="mV", cli=False)
    a_excitable: float = param(3.5, "JansenRit A at the excitable node", gt=0, unit="mV", cli=False)
    v0: float = param(6.0, "JansenRit v0", gt=0, unit="mV", cli=False)
    p_max: float = param(0.15, "p_max of the noise amplitude formula", cli=False)
    p_min: float = param(0.03, "p_min of the noise amplitude formula", cli=False)
    noise_a_const: float = param(3.25, "the constant 3.25 of the noise amplitude formula", gt=0, cli=False)
    coupling_a: float = param(1.0, "SigmoidalJansenRit coupling a", cli=False)
    conduction_speed: float = param(3.0, "conduction speed", gt=0, unit="mm/ms", cli=False)
    seed_policy: str = param(
        "fixed",
        "fixed: RandomState(seed) for every region and iteration (the original); per_region_iteration: one "
        "derived seed per region and iteration",
        choices=SEED_POLICIES,
        cli=False,
    )
    seed: int = param(42, "noise seed", ge=0, le=2**32 - 1, flag="--noise-seed")
    faithful_remap: bool = param(
        False, "excite TVB node r as the original, instead of the fs → TVB mapped node", cli=False
    )
    transient_samples: int = param(1000, "raw samples dropped before decimation", ge=0, cli=False)
    downsample_factor: int = param(4, "decimation factor (2 kHz → 500 Hz at dt 0.5 ms)", ge=1, cli=False)
    n_fs_regions: int = param(N_FS_REGIONS, "cortical regions", ge=1, cli=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`SimulationParamsError` naming the first bad value."""
        try:
            check_param_ranges(self)
        except ParamError as exc:
            raise SimulationParamsError(str(exc)) from None

        def bad(name: str, expected: str) -> SimulationParamsError:
            return SimulationParamsError(
                f"SimulationParams.{name}={getattr(self, name)!r} is invalid: expected {expected}"
            )

        steps = self.segment_ms / self.dt
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
            raise bad("segment_ms", f"a whole multiple of dt={self.dt}")
        for name in ("n_segments", "downsample_factor", "transient_samples"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int | np.integer):
                raise bad(name, "an integer")
        if self.transient_samples >= self.total_steps:
            raise bad(
                "transient_samples", f"fewer than the {self.total_steps} simulated samples per iteration"
            )
        if len(self.mu) != len(self.noise_std) or not self.mu:
            raise bad("mu", f"a non-empty tuple as long as noise_std ({len(self.noise_std)})")
        if not self.iterations or len(set(self.iterations)) != len(self.iterations):
            raise bad("iterations", "a non-empty tuple of distinct iteration indices")
        for m in self.iterations:
            if not isinstance(m, int | np.integer) or not 0 <= m < len(self.mu):
                raise bad("iterations", f"indices in 0..{len(self.mu) - 1} (one per mu/noise_std entry)")
        if any(not math.isfinite(v) for v in self.mu):
            raise bad("mu", "finite values")
        if not isinstance(self.seed, int | np.integer):
            raise bad("seed", "an integer in 0 .. 2**32-1")

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
        return params_dict(self)


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
    """nsig of the y4 equation, computed as the original: (a·3.25·(p_max − p_min)·0.5·std_m)² / 2.

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
