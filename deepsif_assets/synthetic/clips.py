"""The per-region spike clips (``nmm_<filename>/a{r}/nmm_{k}.mat``) and the consolidated clip store.

Clip store (what DeepSIF's ``loaders.SpikeEEGBuild`` opens as ``<file_path[:-12]>_nmm.h5``, i.e.
``<source_dir>/<mode>_sample_nmm.h5`` next to ``<mode>_sample_source1.mat``): dataset ``data`` of shape
(n_clips, 500, 994) float32, region-major. With the used centre regions r_0 < r_1 < … and their clip counts n_r,
``clip_offset[r] = sum(n_q for used q < r)`` and clip ``k`` (1-based, file ``a{r}/nmm_{k}.mat``) of region r is row
``clip_offset[r] + k - 1``. Hence ``nmm_idx = clip_offset[centre] + random_samples - 1`` (0-based row). The datasets
``region`` and ``clip_number`` give the (region, k) of every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import scipy.io

from deepsif_assets.layout import clip_path, count_clips, window_cache_path
from neuro_core.files import atomic_path

CLIP_SAMPLES = 500
NMM_IDX_FORMULA = "nmm_idx = clip_offset[centre_region] + random_samples - 1 (0-based row of data)"


class NoClipsError(RuntimeError):
    """No usable spike clips for the synthetic-source step."""


class ClipStoreSpaceError(RuntimeError):
    """Not enough free disk space for the consolidated clip store."""


def window_cache_covers(clips_root: Path, region: int, n_clips: int, n_regions: int) -> bool:
    """True if the region's peak-window cache exists and describes at least clips ``nmm_1 … nmm_{n_clips}``.

    Extraction deletes the cache before it may change any clip and writes it after the last one, so a cache that
    covers the clip count is current; anything else (absent, older format, fewer clips) means "load the clips".
    """
    path = window_cache_path(clips_root, region)
    if not path.is_file():
        return False
    try:
        shapes = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
        header = scipy.io.loadmat(path, variable_names=["region", "n_clips"])
    except Exception:  # an unreadable cache is only a missed speed-up: the clips are the data
        return False
    rows = shapes.get("window_rows", ())
    return (
        len(rows) >= 2
        and rows[1] == n_regions
        and "region" in header
        and "n_clips" in header
        and int(header["region"].ravel()[0]) == region
        and int(header["n_clips"].ravel()[0]) >= n_clips
    )


def clip_counts(clips_root: Path, regions: Iterable[int]) -> dict[int, int]:
    """``{region: count_clips}`` for each region."""
    return {int(r): count_clips(clips_root, int(r)) for r in regions}


def clip_offsets(counts: Mapping[int, int]) -> dict[int, int]:
    """Region-major row offset of each region's first clip in the store (regions in ascending order)."""
    offsets: dict[int, int] = {}
    total = 0
    for region in sorted(counts):
        offsets[region] = total
        total += counts[region]
    return offsets


def load_clip(path: Path) -> np.ndarray:
    """One clip's ``data`` (500, n_regions) float32; a clear error if the file is not a clip."""
    try:
        data = scipy.io.loadmat(path, variable_names=["data"]).get("data")
    except Exception as exc:  # scipy raises several types for unreadable/text MAT files
        raise NoClipsError(f"clip file {path} is not a readable MAT v5/v7 file: {exc}") from exc
    if data is None or data.ndim != 2 or data.shape[0] != CLIP_SAMPLES:
        shape = None if data is None else data.shape
        raise NoClipsError(
            f"clip file {path}: variable 'data' has shape {shape}, expected ({CLIP_SAMPLES}, n)"
        )
    return np.asarray(data, dtype=np.float32)


def clip_store_bytes(n_clips: int, n_regions: int) -> int:
    """Size of the clip store's ``data`` (uncompressed float32), which dominates the file."""
    return n_clips * CLIP_SAMPLES * n_regions * 4


def check_clip_store_space(target: Path, n_clips: int, n_regions: int) -> int:
    """Fail before any work if ``target``'s file system cannot hold the store; return the bytes needed.

    The store is written next to ``target`` and renamed over it, so an old store does not count as free space.
    """
    import shutil

    needed = clip_store_bytes(n_clips, n_regions)
    free = shutil.disk_usage(Path(target).parent).free
    if free < needed:
        raise ClipStoreSpaceError(
            f"the clip store {target} needs {needed / 1e9:.2f} GB ({n_clips} clips x 500 x {n_regions} float32) "
            f"but its file system has {free / 1e9:.2f} GB free; free space, use fewer regions, or turn "
            "write_clip_store off"
        )
    return needed


def write_clip_store(target: Path, clips_root: Path, counts: Mapping[int, int], n_regions: int) -> dict:
    """Write the consolidated HDF5 clip store (layout in the module docstring); return a summary."""
    import h5py

    offsets = clip_offsets(counts)
    n_clips = sum(counts.values())
    region_of_row = np.concatenate([np.full(counts[r], r) for r in sorted(counts)] or [np.zeros(0)]).astype(
        np.int32
    )
    number_of_row = np.concatenate(
        [np.arange(1, counts[r] + 1) for r in sorted(counts)] or [np.zeros(0)]
    ).astype(np.int32)
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as h5:
        data = h5.create_dataset(
            "data",
            shape=(n_clips, CLIP_SAMPLES, n_regions),
            dtype=np.float32,
            chunks=(1, CLIP_SAMPLES, n_regions),
        )
        for row, (region, k) in enumerate(zip(region_of_row, number_of_row, strict=True)):
            clip = load_clip(clip_path(clips_root, int(region), int(k)))
            if clip.shape[1] != n_regions:
                raise NoClipsError(
                    f"clip {clip_path(clips_root, int(region), int(k))} has {clip.shape[1]} "
                    f"columns, expected {n_regions}"
                )
            data[row] = clip
        h5.create_dataset("region", data=region_of_row)
        h5.create_dataset("clip_number", data=number_of_row)
        h5.attrs["layout"] = "data[row] = clip k of region r, region-major, regions ascending, k = 1..n_r"
        h5.attrs["row_formula"] = "row = clip_offset[r] + k - 1"
        h5.attrs["nmm_idx_formula"] = NMM_IDX_FORMULA
        h5.attrs["clip_offset_regions"] = np.array(sorted(offsets), dtype=np.int32)
        h5.attrs["clip_offset_values"] = np.array([offsets[r] for r in sorted(offsets)], dtype=np.int64)
        h5.attrs["source_layout"] = "clips_root/a{r}/nmm_{k}.mat, variable data (500, n_regions) float32"
    return {"path": str(target), "n_clips": n_clips, "bytes": Path(target).stat().st_size}
