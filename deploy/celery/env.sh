# Sourced by start_worker.sh, start_daemon.sh and start_webserver.sh: the environment every process of the Celery
# deployment needs (see deploy/README.md). Not meant to be run on its own.
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

: "${DAGSTER_HOME:?set DAGSTER_HOME to the instance folder of this machine (holding a copy of deploy/celery/dagster.yaml)}"
if [ ! -f "$DAGSTER_HOME/dagster.yaml" ]; then
    echo "error: $DAGSTER_HOME/dagster.yaml is missing (copy deploy/celery/dagster.yaml there)" >&2
    exit 2
fi
: "${DAGSTER_CELERY_BROKER_URL:?set DAGSTER_CELERY_BROKER_URL, e.g. redis://redis.internal:6379/0}"
export DAGSTER_CELERY_BACKEND_URL="${DAGSTER_CELERY_BACKEND_URL:-$DAGSTER_CELERY_BROKER_URL}"
# dagster.yaml reads the port from the environment (Dagster has no env defaults): PostgreSQL's default.
export DAGSTER_PG_PORT="${DAGSTER_PG_PORT:-5432}"
# Processes import the code location from the repository; numerical libraries get one thread per process.
export PYTHONPATH="${repo_dir}${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
venv="${NEURO_PIPELINES_VENV:-${repo_dir}/.venv}"
export PATH="${venv}/bin:${PATH}"   # `dagster-celery` runs `celery` from PATH

# Fail at start-up, not in the first step, when a shared folder cannot hold locks or atomic renames
# (NEURO_PREFLIGHT_DIRS: colon-separated, e.g. the DeepSIF source folder; default: the shared step-log folder).
preflight_dirs="${NEURO_PREFLIGHT_DIRS:-${DAGSTER_SHARED_STORAGE_DIR:-}}"
if [ -n "$preflight_dirs" ]; then
    python "${repo_dir}/deploy/celery/preflight.py" ${preflight_dirs//:/ } || exit 2
fi
