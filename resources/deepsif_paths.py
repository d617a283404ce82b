"""Where the DeepSIF anatomy is read from and where simulations, clips and synthetic sources are written."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from neuro_core.files import confined_path
from neuro_core.project import DEFAULT_VAR_DIR, PROJECT_ROOT

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
        """An anatomy file by name (symlinks, e.g. DataLad/git-annex trees, are fine); a clear error if missing."""
        path = confined_path(self.anatomy_dir, name, follow_symlinks=True)
        if not path.is_file():
            raise FileNotFoundError(f"anatomy file {path} is missing (anatomy_dir={self.anatomy_dir})")
        return path

    @property
    def source_path(self) -> Path:
        return Path(self.source_dir)
