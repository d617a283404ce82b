"""Pure NumPy reader for TVB connectivity zips (``weights.txt``, ``tract_lengths.txt``, ``centres.txt``)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ConnectivityError(ValueError):
    """The connectivity zip is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class Connectivity:
    """Structural connectome: ``weights[i, j]`` is the weight of the connection j → i (TVB convention)."""

    weights: np.ndarray  # (n, n) float64
    tract_lengths: np.ndarray  # (n, n) float64, mm
    centres: np.ndarray  # (n, 3) float64
    labels: tuple[str, ...]
    source: str

    @property
    def n_nodes(self) -> int:
        return int(self.weights.shape[0])

    def idelays(self, dt: float, speed: float) -> np.ndarray:
        """Delays in integration steps exactly as tvb-library computes them: ``rint(tract_lengths / speed / dt)``."""
        delays = self.tract_lengths / np.array([speed])
        return np.rint(delays / dt).astype(np.int32)


def _member(archive: zipfile.ZipFile, stem: str) -> str | None:
    """Name of the archive member ``stem.txt`` (possibly in a folder, possibly ``.txt.bz2`` is not supported)."""
    for name in archive.namelist():
        if name.rsplit("/", 1)[-1] == f"{stem}.txt":
            return name
    return None


def _read_matrix(archive: zipfile.ZipFile, path: Path, stem: str) -> np.ndarray:
    name = _member(archive, stem)
    if name is None:
        raise ConnectivityError(f"connectivity zip {path} has no {stem}.txt (members: {archive.namelist()})")
    try:
        with archive.open(name) as f:
            matrix = np.loadtxt(io.TextIOWrapper(f, encoding="ascii"), dtype=np.float64, ndmin=2)
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ConnectivityError(
            f"connectivity zip {path}: cannot parse {name} as a numeric matrix: {exc}"
        ) from exc
    return matrix


def load_connectivity(path: str | Path, expected_nodes: int | None = None) -> Connectivity:
    """Read a TVB connectivity zip; raise :class:`ConnectivityError` naming the file on any problem.

    Checks: the file exists and is a zip; ``weights`` and ``tract_lengths`` are square, of equal shape, finite and
    non-negative; ``centres.txt`` has one ``label x y z`` line per node; optionally ``n == expected_nodes``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConnectivityError(f"connectivity file {path} does not exist (expected a TVB connectivity .zip)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConnectivityError(f"connectivity file {path} is not a readable zip archive: {exc}") from exc
    with archive:
        weights = _read_matrix(archive, path, "weights")
        tract_lengths = _read_matrix(archive, path, "tract_lengths")
        centres_name = _member(archive, "centres")
        if centres_name is None:
            raise ConnectivityError(
                f"connectivity zip {path} has no centres.txt (members: {archive.namelist()})"
            )
        try:
            lines = archive.read(centres_name).decode("ascii").split("\n")
        except (UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ConnectivityError(f"connectivity zip {path}: cannot read {centres_name}: {exc}") from exc

    n = weights.shape[0]
    if weights.shape != (n, n) or n == 0:
        raise ConnectivityError(
            f"connectivity zip {path}: weights.txt has shape {weights.shape}, expected square"
        )
    if tract_lengths.shape != weights.shape:
        raise ConnectivityError(
            f"connectivity zip {path}: tract_lengths.txt has shape {tract_lengths.shape}, expected {weights.shape}"
        )
    for name, matrix in (("weights", weights), ("tract_lengths", tract_lengths)):
        if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
            raise ConnectivityError(f"connectivity zip {path}: {name}.txt has non-finite or negative entries")
    rows = [line.split() for line in lines if line.strip()]
    if len(rows) != n or any(len(row) != 4 for row in rows):
        raise ConnectivityError(
            f"connectivity zip {path}: centres.txt has {len(rows)} lines, expected {n} lines of 'label x y z'"
        )
    try:
        centres = np.array([[float(v) for v in row[1:]] for row in rows], dtype=np.float64)
    except ValueError as exc:
        raise ConnectivityError(
            f"connectivity zip {path}: centres.txt has non-numeric coordinates: {exc}"
        ) from exc
    if expected_nodes is not None and n != expected_nodes:
        raise ConnectivityError(f"connectivity zip {path} has {n} nodes, expected {expected_nodes}")
    for matrix in (weights, tract_lengths, centres):
        matrix.setflags(write=False)
    return Connectivity(weights, tract_lengths, centres, tuple(row[0] for row in rows), str(path))
