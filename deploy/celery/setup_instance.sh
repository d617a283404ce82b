#!/usr/bin/env bash
# Prepare the shared PostgreSQL instance once, before any daemon, webserver or worker starts (and again after
# upgrading Dagster): create or migrate the schema, and give the pools their limits.
#
#   DAGSTER_HOME=… DAGSTER_PG_HOST=… DAGSTER_PG_USERNAME=… DAGSTER_PG_PASSWORD=… DAGSTER_PG_DB=… \
#     DAGSTER_SHARED_STORAGE_DIR=… deploy/celery/setup_instance.sh TVB_SLOTS OCTAVE_SLOTS
#
# TVB_SLOTS / OCTAVE_SLOTS: simulations / Octave extractions at once over all workers (sum of their slots).
# Explicit pool limits are required, not only a tuning knob: with only `concurrency.pools.default_limit`, Dagster
# 1.13 creates a pool's limit row lazily when a step first claims it, and two runs doing so at the same moment on
# PostgreSQL fail with InFailedSqlTransaction (dagster-io/dagster#33552). Tested by tests/deploy/.
set -euo pipefail
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${DAGSTER_HOME:?set DAGSTER_HOME to the instance folder of this machine (holding deploy/celery/dagster.yaml)}"
tvb_slots="${1:?usage: setup_instance.sh TVB_SLOTS OCTAVE_SLOTS}"
octave_slots="${2:?usage: setup_instance.sh TVB_SLOTS OCTAVE_SLOTS}"
export DAGSTER_PG_PORT="${DAGSTER_PG_PORT:-5432}"
export PYTHONPATH="${repo_dir}${PYTHONPATH:+:$PYTHONPATH}"
export PATH="${NEURO_PIPELINES_VENV:-${repo_dir}/.venv}/bin:${PATH}"

dagster instance migrate
dagster instance concurrency set tvb "$tvb_slots"
dagster instance concurrency set octave "$octave_slots"
