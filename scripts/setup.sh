#!/usr/bin/env bash
# Idempotent set-up on Debian with Python 3.11: system packages (Octave + signal, Chromium for the UI test,
# Redis for the Celery test), a project virtualenv in .venv with every Python dependency, and the
# project-local Dagster instance in .dagster_home. Quick when already done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Octave runs the matlab/ code; Chromium drives the UI test; Redis is the Celery broker of the scale-out test;
# PostgreSQL holds the instance of the deployment tests (tests/deploy).
APT_PACKAGES=(octave octave-signal libopenblas0 chromium redis-server postgresql)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "[setup] installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.neuro-pipelines-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing Python dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip uv
    # uv does not write .pyc unless asked; without them every process start pays the compile cost.
    # `deploy`: dagster-postgres (and dagster-k8s) for the multi-machine configuration that tests/deploy runs.
    .venv/bin/python -m uv pip install -q --python .venv/bin/python --compile-bytecode -e ".[test,deploy]"
    echo "$want" > "$stamp"
fi

export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
.venv/bin/python -m neuro_pipelines.instance "$DAGSTER_HOME"
echo "[setup] ready: .venv, Octave $(octave-cli --version | head -1 | awk '{print $NF}'), DAGSTER_HOME=$DAGSTER_HOME"
