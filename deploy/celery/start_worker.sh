#!/usr/bin/env bash
# Start one Dagster Celery worker for the `deepsif_regions_celery` job on this machine.
#
#   DAGSTER_HOME=/shared/dagster_home DAGSTER_CELERY_BROKER_URL=redis://redis.internal:6379/0 \
#     deploy/celery/start_worker.sh [NAME] [CONCURRENCY]
#
# Requirements on every worker machine (see deploy/README.md): this repository at the same path as on the
# machine that launches runs, its virtualenv (`pip install . dagster-celery[redis] dagster-postgres`), GNU Octave
# with the `signal` package, the shared DAGSTER_HOME (dagster.yaml pointing at PostgreSQL) and the shared
# anatomy/source folders mounted at the same paths. The worker runs steps of any run that is sent to the broker.
# Tested: the same command line (without this script) on one machine in tests/deepsif_assets/test_celery_scaleout.py.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
name="${1:-deepsif-$(hostname -s)}"
# One simulation keeps one core busy; a worker with N slots runs N steps at once.
concurrency="${2:-$(nproc)}"

: "${DAGSTER_HOME:?set DAGSTER_HOME to the shared instance folder (its dagster.yaml: deploy/celery/dagster.yaml)}"
: "${DAGSTER_CELERY_BROKER_URL:?set DAGSTER_CELERY_BROKER_URL, e.g. redis://redis.internal:6379/0}"
export DAGSTER_CELERY_BACKEND_URL="${DAGSTER_CELERY_BACKEND_URL:-$DAGSTER_CELERY_BROKER_URL}"
# Steps import the code location from the repository; numerical libraries get one thread per worker slot.
export PYTHONPATH="${repo_dir}${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
venv="${NEURO_PIPELINES_VENV:-${repo_dir}/.venv}"
export PATH="${venv}/bin:${PATH}"   # `dagster-celery` runs `celery` from PATH

cd "$repo_dir"
exec dagster-celery worker start \
  -A dagster_celery.app \
  -y "${repo_dir}/deploy/celery/celery.yaml" \
  -n "$name" \
  --loglevel INFO \
  -- --concurrency "$concurrency" --without-gossip --without-mingle
