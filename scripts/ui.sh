#!/usr/bin/env bash
# README command 3: the Dagster UI (webserver + daemon: sensors, automation, run queue) on 127.0.0.1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
# `dagster dev` announces that `dg dev` supersedes it; this project runs `dagster dev` on purpose (no dg project).
export PYTHONWARNINGS="ignore:Function \`dev_command\` is superseded:FutureWarning${PYTHONWARNINGS:+,$PYTHONWARNINGS}"
exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${PORT:-3000}"
