"""Memory planning of simulation batches (pure): what one region holds, and how many regions fit in one run."""

import pytest

from deepsif_assets.params import SimulationOptions
from deepsif_assets.simulation.params import SimulationParams
from deepsif_assets.validation import LANE_WORKING_BYTES, memory_bytes_per_region, regions_per_batch

GB = 1e9


def test_a_region_holds_its_working_memory_and_the_original_format_its_segments():
    # compact: the decimated rows go to their files as they come; only each lane's working memory is held
    assert memory_bytes_per_region(SimulationParams(), SimulationOptions()) == 3 * LANE_WORKING_BYTES
    # the original raw format holds one (20,000 × 998) float32 segment per lane instead
    original = memory_bytes_per_region(SimulationParams(), SimulationOptions(raw_format="original"))
    assert original == 3 * (20_000 * 998 * 4 + LANE_WORKING_BYTES)


def test_the_default_batch_shrinks_to_fit_the_memory():
    per_region = 1.5 * GB
    # 2 runs × 4 regions × 1.5 GB = 12 GB ≤ 0.8 × 22 GB
    assert regions_per_batch(None, 4, 2, 994, per_region, 22 * GB) == 4
    assert regions_per_batch(None, 4, 2, 994, per_region, 8 * GB) == 2  # 6.4 GB usable: 2 runs × 2
    assert regions_per_batch(None, 4, 1, 994, per_region, 2 * GB) == 1
    assert regions_per_batch(None, 4, 2, 994, per_region, None) == 4  # no /proc/meminfo: trust the default


def test_only_the_regions_to_simulate_count():
    per_region = 1.5 * GB
    # 3 regions to simulate, batch 4 requested: one run of 3 regions (4.5 GB), not 2 × 4
    assert regions_per_batch(4, 4, 2, 3, per_region, 6 * GB) == 4
    assert regions_per_batch(None, 4, 2, 0, per_region, 1 * GB) == 4  # nothing to simulate: nothing to check


def test_a_batch_that_does_not_fit_names_what_to_lower():
    per_region = 1.5 * GB
    assert regions_per_batch(3, 4, 2, 994, per_region, 22 * GB) == 3
    with pytest.raises(ValueError, match=r"runs of 8 region\(s\), 2 at once, need ≈ 24.0 GB.*17.6 GB usable.*--batch"):
        regions_per_batch(8, 4, 2, 994, per_region, 22 * GB)
    # not even one region per run fits twice: fewer runs at once is the remedy
    with pytest.raises(ValueError, match="lower --workers"):
        regions_per_batch(None, 4, 2, 994, per_region, 3 * GB)
    with pytest.raises(ValueError, match="one region's simulation does not fit"):
        regions_per_batch(1, 4, 1, 994, per_region, 1 * GB)
