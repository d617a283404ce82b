"""Partition keys of dispatched jobs: readable, safe, and never shared by two different names."""

import pytest

from ephys_assets.dispatch.keys import dispatch_keys, recording_partition_key, session_key_part
from neuro_core.keys import MAX_KEY_LENGTH, validate_key


def test_safe_names_stay_readable():
    key = recording_partition_key("oe_session", "experiment1_Record Node 101#Neuropix-PXI-100.ProbeA-AP_recording1")
    assert key == "oe_session__experiment1_Record-Node-101-Neuropix-PXI-100.ProbeA-AP_recording1"


@pytest.mark.parametrize(
    ("a", "b"),
    [("ünïcödé_g0", "änïcödá_g0"), ("my session", "my-session"), ("a b", "a#b"), ("研究_g0", "実験_g0")],
)
def test_different_session_names_never_share_a_key(a, b):
    assert session_key_part(a) != session_key_part(b)
    for name in (a, b):
        key = recording_partition_key(name, "block0_imec0.ap_recording1")
        assert validate_key(key) == key


def test_long_names_are_cut_with_a_hash_of_the_whole():
    long_key = recording_partition_key("s" * 150, "r" * 150)
    assert len(long_key) <= MAX_KEY_LENGTH and validate_key(long_key) == long_key
    assert long_key != recording_partition_key("s" * 150, "r" * 149 + "x")


def test_recordings_whose_slugs_collide_are_told_apart():
    keys = dispatch_keys([("s", "rec A"), ("s", "rec#A"), ("s", "rec B")])
    assert len(set(keys)) == 3
    assert keys[2] == "s__rec-B", "only the colliding ones get a suffix"
