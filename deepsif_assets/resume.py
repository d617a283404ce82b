"""What a region still needs before a generation can count it as done (pure).

A region is skipped only when its clips are complete and were made with exactly the requested configuration
(:mod:`deepsif_assets.fingerprint`); complete clips made with another configuration are a conflict that the
user must resolve (re-run them, or use another source folder), never silently mixed into a training set.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from deepsif_assets.extraction import ExtractionState, extraction_status, raw_is_complete
from deepsif_assets.fingerprint import UNKNOWN, differences, read_configuration
from deepsif_assets.layout import CONFIGURATION_FILE, RegionLayout


class Action(enum.Enum):
    SKIP = "skip"  # done with this configuration
    EXTRACT = "extract"  # complete raw data (or complete clips to adopt) of this configuration: nmm_spikes only
    SIMULATE = "simulate"  # raw_nmm then nmm_spikes


@dataclass(frozen=True)
class RegionPlan:
    region: int
    action: Action
    conflicts: list[str] = field(default_factory=list)  # differing settings of complete clips (action SIMULATE)


def plan_region(
    layout: RegionLayout, iterations: tuple[int, ...], materialized: bool, requested: dict[str, Any]
) -> RegionPlan:
    """The action for one region; ``requested`` is the whole configuration (with its fingerprint)."""
    status = extraction_status(layout, iterations)
    if status.state is ExtractionState.COMPLETE:
        recorded = read_configuration(layout.configuration_path)
        if recorded is not None and recorded.get("fingerprint") == requested["fingerprint"]:
            return RegionPlan(layout.region, Action.SKIP if materialized else Action.EXTRACT)
        if recorded is None and _raw_is_requested(layout, requested):
            # an extraction killed after its clips, before it recorded their configuration (the raw data goes only
            # after that): its clips are redone from this raw data, never trusted
            return RegionPlan(layout.region, Action.EXTRACT)
        changed = differences(recorded, requested) if recorded else [f"configuration: {UNKNOWN} (not recorded)"]
        return RegionPlan(layout.region, Action.SIMULATE, changed)
    return RegionPlan(layout.region, Action.EXTRACT if _raw_is_requested(layout, requested) else Action.SIMULATE)


def _raw_is_requested(layout: RegionLayout, requested: dict[str, Any]) -> bool:
    """Complete raw data of the requested simulation (read only where the plan depends on it)."""
    return raw_is_complete(layout) and read_configuration(layout.raw_dir / CONFIGURATION_FILE) == requested["simulation"]
