"""The ``regions`` dynamic partitions: one key per cortical (fsaverage5) region, ``"0"`` … ``"993"``."""

from __future__ import annotations

import dagster as dg

from deepsif_assets.simulation.params import N_FS_REGIONS
from neuro_core.keys import InvalidPartitionKeyError, validate_key

REGIONS = "regions"
regions_partitions = dg.DynamicPartitionsDefinition(name=REGIONS)


def validate_region_key(key: str, n_regions: int = N_FS_REGIONS) -> str:
    """A region key is the canonical decimal id of a cortical region, 0 ≤ id < ``n_regions``."""
    validate_key(key, REGIONS)
    if not key.isdigit() or str(int(key)) != key:
        raise InvalidPartitionKeyError(
            f"regions key {key!r} is not a canonical region id (0, 1, …, {n_regions - 1})"
        )
    if int(key) >= n_regions:
        raise InvalidPartitionKeyError(f"region {key} is out of range: expected 0 ≤ region < {n_regions}")
    return key


def region_keys(start: int, end: int, n_regions: int = N_FS_REGIONS) -> list[str]:
    """Keys for regions ``start`` … ``end - 1`` (end exclusive, as the original ``--a_end``)."""
    if not 0 <= start < end <= n_regions:
        raise InvalidPartitionKeyError(
            f"region range [{start}, {end}) is invalid: expected 0 ≤ start < end ≤ {n_regions}"
        )
    return [str(r) for r in range(start, end)]
