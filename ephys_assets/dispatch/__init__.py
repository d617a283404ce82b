"""Pure (Dagster-free) re-implementation of aind-ephys-job-dispatch: parameters, loaders, timestamp check, jobs."""

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.jobs import DispatchResult, discover_jobs, write_jobs
from ephys_assets.dispatch.model import Job
from ephys_assets.dispatch.params import DispatchParams, params_from_mapping

__all__ = [
    "DispatchError",
    "DispatchParams",
    "DispatchResult",
    "Job",
    "discover_jobs",
    "params_from_mapping",
    "write_jobs",
]
