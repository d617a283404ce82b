"""Where the project lives and where its persistent state goes.

Every entry point (``dagster dev``, the CLIs, the demo, the tests) resolves the Dagster instance through
:func:`dagster_home`, so the UI shows what the command-line tools did.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
# Demo data and results live under var/ (git-ignored) unless NEURO_PIPELINES_VAR_DIR or a resource config says
# otherwise (tests point it at a temporary folder so a real `dagster dev` never writes into the project).
DEFAULT_VAR_DIR = Path(os.environ.get("NEURO_PIPELINES_VAR_DIR") or PROJECT_ROOT / "var").absolute()
SHARED_DIR = PROJECT_ROOT.parent / "shared"


def dagster_home() -> Path:
    """The instance folder: ``$DAGSTER_HOME`` if set, else the project-local ``.dagster_home``.

    Sets ``DAGSTER_HOME`` for this process (and its children) so that Dagster itself agrees.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).absolute()
    os.environ["DAGSTER_HOME"] = str(home)
    return home
