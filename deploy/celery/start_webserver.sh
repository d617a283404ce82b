#!/usr/bin/env bash
# Start the Dagster webserver (UI and GraphQL API) of the Celery deployment; same environment as the daemon.
#
#   … deploy/celery/start_webserver.sh [HOST] [PORT]        (default 127.0.0.1 3000)
#
# Several webservers may run against one instance. Tested on one host by tests/deploy/ (GraphQL launches).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec dagster-webserver -w "${repo_dir}/workspace.yaml" -h "${1:-127.0.0.1}" -p "${2:-3000}"
