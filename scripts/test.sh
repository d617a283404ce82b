#!/usr/bin/env bash
# README command 2: install everything (idempotent), then lint and run the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# Tests use their own temporary instances; the project instance is never touched by them.
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
