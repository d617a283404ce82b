"""The configuration a region's clips were made with, and its fingerprint (pure).

A training set must never silently mix regions simulated or extracted with different settings. Every region
therefore records what made it: the simulation constants, engine and seeds (``raw_nmm/a{r}/_configuration.json``,
written before the simulation starts), then, with the clips, the whole configuration — simulation part, clip
extraction options, lead field and connectome file hashes, clip folder name — and its fingerprint
(``nmm_<filename>/a{r}/_configuration.json``, also in the materialization metadata). The fingerprint is the same
for every region made with one configuration (the region id is not part of it), so:

- resume skips a region only when its recorded fingerprint equals the requested one;
- ``synthetic_source`` refuses to combine regions with different fingerprints unless told which one to use;
- ``<source>/nmm_<filename>/source_configuration.json`` lists, human-readably, each configuration present in
  the folder with its regions.

What does not change the clips' values is left out: the raw format (compact and original raw data give the same
clips), whether clip files are compressed, ``keep_raw``, worker counts.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from deepsif_assets.params import ExtractionParams, SimulationOptions
from deepsif_assets.simulation.params import SimulationParams
from neuro_core.files import write_json_atomic
from neuro_core.locks import exclusive_lock
from neuro_core.params import params_dict

SOURCE_CONFIGURATION_FILE = "source_configuration.json"
#: extraction options that do not change a clip's values (the lead field is recorded by its hash)
_NOT_IN_FINGERPRINT = ("keep_raw", "leadfield_name", "compress_clips")
UNKNOWN = "unknown"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (cached per path, size and modification time)."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256(path: str, _size: int, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_of(configuration: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of ``configuration`` (its own fingerprint excluded)."""
    body = {k: v for k, v in configuration.items() if k != "fingerprint"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def simulation_configuration(
    params: SimulationParams, options: SimulationOptions, connectivity: Path
) -> dict[str, Any]:
    """The simulation part: every constant, the seeds' policy, the engine and its precision, the connectome."""
    return {
        "params": params_dict(params),
        "engine": options.engine,
        "precision": options.effective_precision,
        "connectivity": {"file": Path(connectivity).name, "sha256": file_sha256(connectivity)},
    }


def region_configuration(
    simulation: dict[str, Any] | None, extraction: ExtractionParams, leadfield: Path
) -> dict[str, Any]:
    """The whole configuration of a region's clips, with its ``fingerprint``.

    ``simulation`` is None for raw data made outside this pipeline (then recorded as ``"unknown"``).
    """
    configuration: dict[str, Any] = {
        "simulation": simulation if simulation is not None else UNKNOWN,
        "extraction": {k: v for k, v in params_dict(extraction).items() if k not in _NOT_IN_FINGERPRINT},
        "leadfield": {"file": Path(leadfield).name, "sha256": file_sha256(leadfield)},
    }
    configuration["fingerprint"] = fingerprint_of(configuration)
    return configuration


def read_configuration(path: Path) -> dict[str, Any] | None:
    """A recorded configuration, or None when absent or unreadable (outputs made before fingerprints)."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def recorded_fingerprint(path: Path) -> str:
    """The fingerprint recorded in ``path``, or ``"unknown"``."""
    configuration = read_configuration(path)
    return str(configuration.get("fingerprint", UNKNOWN)) if configuration else UNKNOWN


def differences(recorded: Any, requested: Any, prefix: str = "") -> list[str]:
    """Dotted names of the values that differ, e.g. ``simulation.params.n_segments: 2 → 20``."""
    if isinstance(recorded, dict) and isinstance(requested, dict):
        out = []
        for key in sorted(set(recorded) | set(requested)):
            if key == "fingerprint":
                continue
            out += differences(recorded.get(key), requested.get(key), f"{prefix}{key}.")
        return out
    if recorded != requested:
        return [f"{prefix.rstrip('.')}: {json.dumps(recorded)} → {json.dumps(requested)}"]
    return []


def record_in_source(clip_root: Path, region: int, configuration: dict[str, Any]) -> None:
    """Add ``region`` under its configuration in ``<clip_root>/source_configuration.json`` (and drop it from
    any other configuration it was listed under), under a lock: several regions finish at once."""
    path = Path(clip_root) / SOURCE_CONFIGURATION_FILE
    with exclusive_lock(Path(clip_root) / ".source_configuration.lock", "updating the source configuration",
                        wait=True, timeout_s=60):
        current = read_configuration(path) or {}
        entries = current.get("configurations", {})
        for entry in entries.values():
            entry["regions"] = [r for r in entry.get("regions", []) if r != region]
        fingerprint = configuration["fingerprint"]
        entry = entries.setdefault(fingerprint, {"configuration": configuration, "regions": []})
        entry["regions"] = sorted({*entry["regions"], region})
        entries = {fp: e for fp, e in entries.items() if e["regions"]}
        write_json_atomic(
            path,
            {
                "about": "The configurations the clips in this folder were made with, and their regions. "
                "A training set should use one configuration; see README (Resume and configurations).",
                "configurations": entries,
            },
        )
