"""A region's fingerprint changes with what changes its clips' values, and only with that."""

from pathlib import Path

import pytest

from deepsif_assets.fingerprint import region_configuration
from deepsif_assets.params import ExtractionParams

LEADFIELD = Path(__file__).resolve().parents[2] / "data" / "deepsif-anatomy" / "leadfield_75_20k.mat"


def _fingerprint(**extraction) -> str:
    return region_configuration(None, ExtractionParams(**extraction), LEADFIELD)["fingerprint"]


@pytest.mark.parametrize("options", [{"keep_raw": True}, {"compress_clips": True}])
def test_file_handling_options_keep_the_fingerprint(options):
    assert _fingerprint(**options) == _fingerprint()


@pytest.mark.parametrize("options", [{"threshold_mv": 7.5}, {"iterations": (0, 1)}, {"fix_block_start": False}])
def test_algorithm_options_change_the_fingerprint(options):
    assert _fingerprint(**options) != _fingerprint()
