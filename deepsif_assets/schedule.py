"""The order in which a generation runs its work (pure): simulation batches, then extraction per region.

Simulation runs cover a batch of regions (one run = one partition range, so the batch must be contiguous in the
instance's key order); each region's extraction is its own run (failure isolation), a few per worker process.
Extraction goes first whenever it can, and a new batch starts only while the regions whose raw data is on disk
stay within ``max_in_flight``: peak disk is bounded by ≈ 1.3 GB per region in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def regions_label(regions: Sequence[int]) -> str:
    """``region 3``, ``regions 0-3`` or ``regions 0, 2, 5``."""
    if len(regions) == 1:
        return f"region {regions[0]}"
    if list(regions) == list(range(regions[0], regions[0] + len(regions))):
        return f"regions {regions[0]}-{regions[-1]}"
    return f"regions {', '.join(map(str, regions))}"


def simulation_batches(regions: Sequence[int], key_order: Sequence[str], size: int) -> list[list[int]]:
    """``regions`` in batches of at most ``size`` that are contiguous in ``key_order`` (the instance's order of
    the partition keys, which a partition range follows)."""
    index = {key: i for i, key in enumerate(key_order)}
    batches: list[list[int]] = []
    for region in sorted(regions, key=lambda r: index[str(r)]):
        last = batches[-1] if batches else None
        if last and len(last) < size and index[str(region)] == index[str(last[-1])] + 1:
            last.append(region)
        else:
            batches.append([region])
    return batches


@dataclass
class GenerationSchedule:
    """What to start next; the caller reports what ended."""

    to_simulate: list[list[int]]  # batches not started yet
    to_extract: list[int]  # regions whose raw data (or complete clips) are ready
    max_in_flight: int  # regions with raw data on disk (simulating or waiting for extraction)
    extract_per_worker: int = 4
    in_flight: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.in_flight |= set(self.to_extract)

    def next_work(self) -> tuple[str, list[int]] | None:
        """("extract", regions) or ("simulate", batch), or None when nothing may start now."""
        if self.to_extract:
            regions, self.to_extract = (
                self.to_extract[: self.extract_per_worker],
                self.to_extract[self.extract_per_worker :],
            )
            return "extract", regions
        if self.to_simulate and len(self.in_flight) + len(self.to_simulate[0]) <= max(
            self.max_in_flight, len(self.to_simulate[0])
        ):
            batch = self.to_simulate.pop(0)
            self.in_flight |= set(batch)
            return "simulate", batch
        return None

    def simulated(self, batch: Sequence[int], ok: bool) -> None:
        if ok:
            self.to_extract += list(batch)
        else:
            self.in_flight -= set(batch)

    def extracted(self, region: int) -> None:
        self.in_flight.discard(region)

    @property
    def finished(self) -> bool:
        return not self.to_simulate and not self.to_extract
