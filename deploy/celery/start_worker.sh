#!/usr/bin/env bash
# Start one Dagster Celery worker for the `deepsif_regions_celery` job on this machine.
#
#   DAGSTER_HOME=/etc/neuro-pipelines/dagster_home DAGSTER_CELERY_BROKER_URL=redis://redis.internal:6379/0 \
#     DAGSTER_PG_HOST=… DAGSTER_PG_USERNAME=… DAGSTER_PG_PASSWORD=… DAGSTER_PG_DB=… \
#     DAGSTER_SHARED_STORAGE_DIR=/shared/dagster-storage NEURO_PREFLIGHT_DIRS=/shared/deepsif/source \
#     deploy/celery/start_worker.sh [NAME] [CONCURRENCY]
#
# Requirements on every worker machine (see deploy/README.md): this repository at the same path as on the
# machine that launches runs, its virtualenv (scripts/setup.sh: the project with dagster-celery[redis] and
# dagster-postgres), GNU Octave with the `signal` package, a DAGSTER_HOME holding a copy of
# deploy/celery/dagster.yaml, and the shared folders mounted at the same paths. The worker runs steps of any run
# sent to the broker, in the current directory (give each worker its own: Octave may leave files there).
# Before starting, the shared folders are checked for working locks and atomic renames (env.sh, preflight.py).
# Tested: two workers on one host (tests/deploy/, tests/deepsif_assets/test_celery_scaleout.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

name="${1:-deepsif-$(hostname -s)}"
# One simulation keeps one core busy; a worker with N slots runs N steps at once.
concurrency="${2:-$(nproc)}"

exec dagster-celery worker start \
  -A dagster_celery.app \
  -y "${repo_dir}/deploy/celery/celery.yaml" \
  -n "$name" \
  --loglevel INFO \
  -- --concurrency "$concurrency" --without-gossip --without-mingle
