"""Where the project lives and where its outputs go by default (the resources' default roots)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Demo data and results live under var/ (git-ignored) unless NEURO_PIPELINES_VAR_DIR or a resource config says
# otherwise (tests point it at a temporary folder so a real `dagster dev` never writes into the project).
DEFAULT_VAR_DIR = Path(os.environ.get("NEURO_PIPELINES_VAR_DIR") or PROJECT_ROOT / "var").absolute()
