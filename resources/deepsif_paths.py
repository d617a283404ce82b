"""Where the DeepSIF anatomy is read from and where simulations, clips and synthetic sources are written."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from neuro_pipelines.fsutil import confined_path
from neuro_pipelines.project import DEFAULT_VAR_DIR, PROJECT_ROOT

DEFAULT_ANATOMY_DIR = PROJECT_ROOT / "data" / "deepsif-anatomy"
DEFAULT_SOURCE_DIR = DEFAULT_VAR_DIR / "deepsif" / "source"


class DeepsifPaths(dg.ConfigurableResource):
    """The original's ``../anatomy`` and ``../source`` folders, made explicit."""

    anatomy_dir: str = Field(
        default=str(DEFAULT_ANATOMY_DIR), description="Folder with connectivity, lead field, cortex"
    )
    source_dir: str = Field(
        default=str(DEFAULT_SOURCE_DIR), description="Output root (raw_nmm/, nmm_<filename>/, …)"
    )

    def anatomy_file(self, name: str) -> Path:
        """An anatomy file by name; a clear error if it is missing."""
        path = confined_path(self.anatomy_dir, name)
        if not path.is_file():
            raise FileNotFoundError(f"anatomy file {path} is missing (anatomy_dir={self.anatomy_dir})")
        return path

    def source_path(self, *parts: str) -> Path:
        """A path under ``source_dir`` that cannot escape it."""
        return confined_path(self.source_dir, *parts)
