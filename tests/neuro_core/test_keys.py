import pytest

from deepsif_assets.partitions import region_keys, validate_region_key
from neuro_core.keys import MAX_KEY_LENGTH, InvalidPartitionKeyError, slugify, validate_key


@pytest.mark.parametrize(
    "key", ["a/b", "..", "a..b", "a\\b", "", "x" * (MAX_KEY_LENGTH + 1), "-lead", "sp ace", "a,b", "a|b", "[x]"]
)
def test_bad_keys_rejected(key):
    with pytest.raises(InvalidPartitionKeyError):
        validate_key(key)


@pytest.mark.parametrize("key", ["0", "ecephys_1_2024-01-01_12-00-00__block0_imec0.ap_recording1", "a.b-c_d"])
def test_good_keys_accepted(key):
    assert validate_key(key) == key


def test_slugify_makes_open_ephys_stream_names_valid():
    name = "experiment1_Record Node 101#Neuropix-PXI-100.ProbeA-AP_recording1"
    slug = slugify(name)
    assert validate_key(slug) == slug
    assert " " not in slug and "#" not in slug
    assert validate_key(slugify("../../etc/passwd")) == "etc-passwd"


@pytest.mark.parametrize("key", ["994", "-1", "01", "1.0", "abc", "1/2"])
def test_region_keys_validated(key):
    with pytest.raises(InvalidPartitionKeyError):
        validate_region_key(key)


def test_region_range_end_exclusive():
    assert region_keys(3, 6) == ["3", "4", "5"]
    with pytest.raises(InvalidPartitionKeyError):
        region_keys(5, 5)
    with pytest.raises(InvalidPartitionKeyError):
        region_keys(990, 995)
