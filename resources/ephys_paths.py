"""Where ephys sessions are read from and where job JSON files go."""

from pathlib import Path

import dagster as dg

from neuro_core.project import DEFAULT_VAR_DIR

DEFAULT_EPHYS_DATA_ROOT = DEFAULT_VAR_DIR / "ephys" / "data"
DEFAULT_EPHYS_RESULTS_ROOT = DEFAULT_VAR_DIR / "ephys" / "results"


class EphysPaths(dg.ConfigurableResource):
    """Data root (one folder per session) and results root; the sensor's quiet period lives here too."""

    data_root: str = str(DEFAULT_EPHYS_DATA_ROOT)
    results_root: str = str(DEFAULT_EPHYS_RESULTS_ROOT)
    # A session is dispatched once none of its files changed for this long (copies in progress are left alone).
    sensor_quiet_seconds: float = 30.0

    @property
    def data_path(self) -> Path:
        return Path(self.data_root)

    @property
    def results_path(self) -> Path:
        return Path(self.results_root)
