"""DeepSIF neural-mass simulation (pure, Dagster-free): fast numba engine, stock tvb-library reference, raw files.

Public API: :class:`SimulationParams`, :data:`FS_TO_TVB`, :func:`excitable_tvb_node`, :func:`load_connectivity`,
:func:`simulate_region` / :func:`simulate_regions` (all iterations of several regions as lanes of one lock-step
batch) → :class:`RegionSimulationResult`, :data:`ENGINE_PRECISIONS`. tvb-library loads lazily.
"""

from neuro_core.numba_cache import drop_stale_caches

from .connectivity import Connectivity, ConnectivityError, load_connectivity
from .lanes import DEFAULT_PRECISION, ENGINE_PRECISIONS
from .params import (
    FS_TO_TVB,
    N_FS_REGIONS,
    N_TVB_NODES,
    SimulationParams,
    SimulationParamsError,
    excitable_tvb_node,
    iteration_seed,
    noise_nsig,
)
from .region import (
    COMPLETE_MARKER,
    ENGINES,
    RAW_FORMATS,
    RegionSimulationResult,
    compact_file_name,
    is_complete,
    segment_file_name,
    simulate_region,
    simulate_regions,
)

# The compiled kernels in numba's cache also hold code from the package's other files (lanes.py calls
# legacy_rng.py): they are dropped when any source of the package changed.
drop_stale_caches(__name__)

__all__ = [
    "COMPLETE_MARKER",
    "DEFAULT_PRECISION",
    "ENGINES",
    "ENGINE_PRECISIONS",
    "FS_TO_TVB",
    "N_FS_REGIONS",
    "N_TVB_NODES",
    "RAW_FORMATS",
    "Connectivity",
    "ConnectivityError",
    "RegionSimulationResult",
    "SimulationParams",
    "SimulationParamsError",
    "compact_file_name",
    "excitable_tvb_node",
    "is_complete",
    "iteration_seed",
    "load_connectivity",
    "noise_nsig",
    "segment_file_name",
    "simulate_region",
    "simulate_regions",
]
