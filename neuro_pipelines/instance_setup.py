"""Create (or complete) the project-local persistent Dagster instance.

Run as ``python -m neuro_pipelines.instance_setup [DAGSTER_HOME]``; every entry point also calls
:func:`ensure_instance`. Existing files and pool limits a user changed are left alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from neuro_pipelines.project import dagster_home

POOLS = ("tvb", "octave")


def default_dagster_yaml(n_cpus: int) -> str:
    """The ``dagster.yaml`` written on first use, sized for a machine with ``n_cpus`` cores."""
    return f"""\
# Project-local Dagster instance for neuro-pipelines; created by scripts/setup.sh on first use.
# Edit freely (restart `dagster dev` afterwards); delete this file to get the defaults back.
# Per-pool limits live in the instance database: `dagster instance concurrency set tvb N`.

concurrency:
  # Queue: at most one run per core; a simulation or an Octave extraction keeps one core busy.
  runs:
    max_concurrent_runs: {n_cpus}
  pools:
    # Any pool without its own limit (set below for `tvb` and `octave`) gets this many slots.
    default_limit: {n_cpus}

# Retry runs whose process crashed (OOM kill, lost worker); a failing asset is a real failure, not retried.
run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false

telemetry:
  enabled: false
"""


def ensure_instance(home: Path | None = None) -> Path:
    """Create ``home`` with a default ``dagster.yaml`` and pool limits unless they already exist."""
    if home is not None:
        os.environ["DAGSTER_HOME"] = str(Path(home).absolute())
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    n_cpus = os.cpu_count() or 1
    if not config.exists():
        config.write_text(default_dagster_yaml(n_cpus))

    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        configured = set(storage.get_concurrency_keys())
        for pool in POOLS:
            if pool not in configured:
                storage.set_concurrency_slots(pool, n_cpus)
    return home


if __name__ == "__main__":
    ensure_instance(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
