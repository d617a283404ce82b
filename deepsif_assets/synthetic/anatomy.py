"""Anatomy inputs of the synthetic-source step, and the derived region distance matrix.

``dis_matrix_fs_20k.mat`` (``raw_dis_matrix``, 994×994) is not shipped with DeepSIF. Our stand-in: the centroid of
region r is the mean of ``fs_cortex_20k.pos`` over the vertices with ``rm == r``; ``raw_dis_matrix`` holds the
Euclidean distances between centroids (mm, symmetric, zero diagonal). It has never been compared with the authors'
file, so ``mag_change`` computed from it is recorded as based on a stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from neuro_core.files import atomic_path

DIS_MATRIX_FILE = "dis_matrix_fs_20k.mat"
CORTEX_FILE = "fs_cortex_20k.mat"
INFLATED_FILE = "fs_cortex_20k_inflated.mat"
REGION_MAPPING_FILE = "fs_cortex_20k_region_mapping.mat"
DIS_MATRIX_DERIVATION = (
    "stand-in: raw_dis_matrix[i, j] = Euclidean distance (mm) between the centroids of regions i and j, "
    "centroid = mean of fs_cortex_20k.pos over vertices with fs_cortex_20k_region_mapping.rm == region; "
    "not compared with the authors' (unshipped) dis_matrix_fs_20k.mat"
)


class AnatomyError(ValueError):
    """An anatomy file is missing or does not hold what the synthetic-source step needs."""


def _load_variable(path: Path, name: str) -> np.ndarray:
    if not path.is_file():
        raise AnatomyError(f"anatomy file {path} is missing (needed for variable {name!r})")
    data = scipy.io.loadmat(path, variable_names=[name])
    if name not in data:
        raise AnatomyError(f"anatomy file {path} has no variable {name!r}")
    return data[name]


def region_centroids(cortex_file: Path, region_mapping_file: Path) -> np.ndarray:
    """(n_regions, 3) mean vertex position per region (``rm`` is the 0-based region of each vertex)."""
    pos = np.asarray(_load_variable(cortex_file, "pos"), dtype=np.float64)
    region_of_vertex = np.asarray(_load_variable(region_mapping_file, "rm"), dtype=np.int64).ravel()
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] != region_of_vertex.size:
        raise AnatomyError(
            f"{cortex_file}: pos has shape {pos.shape}, expected (n_vertices, 3) with n_vertices = "
            f"{region_of_vertex.size} (length of rm in {region_mapping_file})"
        )
    n_regions = int(region_of_vertex.max()) + 1
    counts = np.bincount(region_of_vertex, minlength=n_regions)
    if region_of_vertex.min() < 0 or np.any(counts == 0):
        empty = np.flatnonzero(counts == 0)[:10].tolist()
        raise AnatomyError(f"{region_mapping_file}: rm must cover regions 0..{n_regions - 1}; empty: {empty}")
    sums = np.stack(
        [np.bincount(region_of_vertex, weights=pos[:, d], minlength=n_regions) for d in range(3)], 1
    )
    return sums / counts[:, None]


def derive_dis_matrix(cortex_file: Path, region_mapping_file: Path) -> np.ndarray:
    """The stand-in ``raw_dis_matrix``: distances between region centroids (see the module docstring)."""
    centroids = region_centroids(cortex_file, region_mapping_file)
    diff = centroids[:, None, :] - centroids[None, :, :]
    dis = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    np.fill_diagonal(dis, 0.0)
    return dis


@dataclass(frozen=True)
class DisMatrixSource:
    """Where ``dis_matrix_fs_20k.mat`` came from."""

    path: Path
    derived: bool  # True: our centroid stand-in; False: a file found in the anatomy folder
    description: str


def ensure_dis_matrix(anatomy_dir: Path, source_dir: Path) -> DisMatrixSource:
    """Use ``<anatomy_dir>/dis_matrix_fs_20k.mat`` if present; else derive it once into ``source_dir``.

    The anatomy folder is treated as read-only. A previously derived file in ``source_dir`` is reused.
    """
    shipped = Path(anatomy_dir) / DIS_MATRIX_FILE
    if shipped.is_file():
        return DisMatrixSource(shipped, False, f"anatomy file {shipped}")
    target = Path(source_dir) / DIS_MATRIX_FILE
    if not target.is_file():
        dis = derive_dis_matrix(Path(anatomy_dir) / CORTEX_FILE, Path(anatomy_dir) / REGION_MAPPING_FILE)
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            scipy.io.savemat(f, {"raw_dis_matrix": dis}, do_compression=True)
    return DisMatrixSource(target, True, DIS_MATRIX_DERIVATION)


def load_neighbours(region_mapping_file: Path) -> list[np.ndarray]:
    """``nbs`` as a list of 0-based neighbour arrays (the file stores 1-based ids)."""
    cells = _load_variable(region_mapping_file, "nbs").ravel()
    return [np.asarray(c, dtype=np.int64).ravel() - 1 for c in cells]
