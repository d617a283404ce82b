#!/usr/bin/env bash
# README command 1: install everything (idempotent), then run the whole pipeline end to end on bundled sample
# data through Dagster, into the project-local instance that `dagster dev` (scripts/ui.sh) shows.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
exec .venv/bin/python -m neuro_pipelines.demo "$@"
