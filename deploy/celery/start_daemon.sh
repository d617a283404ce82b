#!/usr/bin/env bash
# Start the Dagster daemon of the Celery deployment (run queue, sensors, run monitoring, run retries) on the
# machine that orchestrates runs. Run processes are launched from here and inherit this environment.
#
#   DAGSTER_HOME=/etc/neuro-pipelines/dagster_home DAGSTER_CELERY_BROKER_URL=redis://redis.internal:6379/0 \
#     DAGSTER_PG_HOST=… DAGSTER_PG_USERNAME=… DAGSTER_PG_PASSWORD=… DAGSTER_PG_DB=… \
#     DAGSTER_SHARED_STORAGE_DIR=/shared/dagster-storage deploy/celery/start_daemon.sh
#
# Exactly one daemon per instance. Tested on one host by tests/deploy/ (see deploy/README.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec dagster-daemon run -w "${repo_dir}/workspace.yaml"
