"""Where one region's files live under the source folder (pure; the one definition of the layout).

- ``raw_nmm/a{r}/`` — the simulation output (compact ``_ds.mat`` files or the original segments);
  ``_complete.json`` is written last, so raw data without it is a crashed, partial run;
- ``nmm_<filename>/a{r}/nmm_{k}.mat`` — clips ``data`` (500 × 994 single), k = 1 … total, and
  ``_configuration.json``, the configuration (and its fingerprint) the clips were made with;
- ``nmm_<filename>/clip_info/iter{m}/iter_{m}_i_{r}.mat`` — markers ``num_spike`` (cumulative) and ``spike_time``;
- ``nmm_<filename>/clip_windows/a{r}.mat`` — the clips' peak windows (uncompressed), a derived cache read by the
  synthetic-source step instead of inflating every clip;
- ``.locks/a{r}.lock`` — held while a step works on the region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from deepsif_assets.simulation.region import COMPLETE_MARKER
from neuro_core.files import confined_path

CONFIGURATION_FILE = "_configuration.json"
WINDOW_CACHE_DIR = "clip_windows"
CLIP_NAME = re.compile(r"^nmm_([1-9][0-9]*)\.mat$")


def clip_root(source_dir: Path, filename: str) -> Path:
    """``<source_dir>/nmm_<filename>``: the clips of every region."""
    return confined_path(source_dir, f"nmm_{filename}")


def clip_path(clips_root: Path, region: int, k: int) -> Path:
    """``<clips_root>/a{region}/nmm_{k}.mat`` (k is 1-based)."""
    return Path(clips_root) / f"a{region}" / f"nmm_{k}.mat"


def window_cache_path(clips_root: Path, region: int) -> Path:
    """``<clips_root>/clip_windows/a{region}.mat``: the clips' peak windows (``matlab/write_clip_windows.m``)."""
    return Path(clips_root) / WINDOW_CACHE_DIR / f"a{region}.mat"


def clip_numbers(folder: Path) -> list[int]:
    """Sorted k of the ``nmm_{k}.mat`` files in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := CLIP_NAME.match(p.name)))


def count_clips(clips_root: Path, region: int) -> int:
    """Usable clips of ``region``: the contiguous run ``nmm_1 … nmm_n`` on disk (0 if none)."""
    numbers = set(clip_numbers(Path(clips_root) / f"a{region}"))
    n = 0
    while n + 1 in numbers:
        n += 1
    return n


@dataclass(frozen=True)
class RegionLayout:
    """Paths of one region's raw data, clips, markers and lock under ``source_dir``."""

    source_dir: Path
    region: int
    filename: str = "spikes"

    @property
    def raw_dir(self) -> Path:
        return confined_path(self.source_dir, "raw_nmm", f"a{self.region}")

    @property
    def raw_complete_flag(self) -> Path:
        return self.raw_dir / COMPLETE_MARKER

    @property
    def clip_root(self) -> Path:
        return clip_root(self.source_dir, self.filename)

    @property
    def clip_dir(self) -> Path:
        return self.clip_root / f"a{self.region}"

    def clip_path(self, k: int) -> Path:
        return clip_path(self.clip_root, self.region, k)

    @property
    def configuration_path(self) -> Path:
        return self.clip_dir / CONFIGURATION_FILE

    @property
    def lock_path(self) -> Path:
        return confined_path(self.source_dir, ".locks", f"a{self.region}.lock")

    def marker_path(self, iteration: int) -> Path:
        return self.clip_root / "clip_info" / f"iter{iteration}" / f"iter_{iteration}_i_{self.region}.mat"

    @property
    def window_cache_path(self) -> Path:
        return window_cache_path(self.clip_root, self.region)
