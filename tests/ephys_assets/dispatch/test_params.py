"""Parameter parsing: one set of defaults, aliases, strict validation (D1–D7, D28)."""

import json

import pytest

from ephys_assets.dispatch.errors import DispatchError
from ephys_assets.dispatch.params import build_arg_parser, params_from_mapping, params_from_namespace


def _cli(*argv):
    return params_from_namespace(build_arg_parser().parse_args(list(argv)))


def test_same_defaults_for_flags_and_params():
    flags = _cli("--input", "spikeglx")
    mapping = params_from_mapping({"input": "spikeglx"})
    assert flags == mapping
    assert mapping.split_segments is True and mapping.split_groups is True  # D1
    assert mapping.debug_duration == 30.0 and mapping.min_recording_duration is None


def test_flags_map_to_fields():
    p = _cli(
        "--input", "openephys", "--no-split-segments", "--no-split-groups", "--debug", "--debug-duration", "2.5",
        "--skip-timestamps-check", "--multi-session", "--min-recording-duration", "60", "--record-nodes", "all",
    )  # fmt: skip
    assert (p.split_segments, p.split_groups, p.debug, p.debug_duration) == (False, False, True, 2.5)
    assert (p.skip_timestamps_check, p.multi_session, p.min_recording_duration, p.record_nodes) == (
        True,
        True,
        60.0,
        "all",
    )


def test_concatenate_alias_and_conflicts():
    assert _cli("--input", "spikeglx", "--concatenate").split_segments is False
    p = params_from_mapping({"input": "spikeglx", "concatenate": True})
    assert p.split_segments is False and any("deprecated" in w for w in p.warnings)
    assert params_from_mapping({"input": "aind", "concatenate": False}).split_segments is True
    with pytest.raises(DispatchError, match="conflicting"):
        params_from_mapping({"input": "aind", "concatenate": True, "split_segments": True})


def test_nextflow_inverse_aliases_and_unknown_keys():
    p = params_from_mapping({"input": "aind", "no_split_segments": True, "no_split_groups": "true"})
    assert (p.split_segments, p.split_groups) == (False, False)
    with pytest.raises(DispatchError, match="unknown dispatch parameter"):
        params_from_mapping({"input": "aind", "split_segment": False})


def test_params_json_string_and_file(tmp_path):
    payload = {"input": "nwb", "min_recording_duration": "60", "nwb_files": ["a.nwb", "b.nwb"], "debug": "1"}
    p = _cli("--params", json.dumps(payload), "--input", "spikeglx")  # --params overrides other flags
    assert p.input == "nwb" and p.min_recording_duration == 60.0 and p.nwb_files == ("a.nwb", "b.nwb")
    assert p.debug is True and p.debug_duration == 30.0  # D4
    f = tmp_path / "params.json"
    f.write_text(json.dumps({"input": "spikeglx", "nwb_files": "x.nwb, y.nwb"}))
    assert _cli("--params", str(f)).nwb_files == ("x.nwb", "y.nwb")  # D7


@pytest.mark.parametrize("value", [None, -1, "-1", -0.5, ""])
def test_min_duration_disabled_values(value):
    assert (
        params_from_mapping({"input": "aind", "min_recording_duration": value}).min_recording_duration is None
    )


def test_spikeinterface_info_json_string_long_and_file(tmp_path):
    info = {"reader_type": "spikeinterface", "reader_kwargs": {"x": "a" * 400}}
    p = params_from_mapping(
        {"input": "spikeinterface", "spikeinterface_info": json.dumps(info)}
    )  # D6: no OSError
    assert p.spikeinterface_info == info
    f = tmp_path / "sinfo.json"
    f.write_text(json.dumps(info))
    assert _cli("--input", "spikeinterface", "--spikeinterface-info", str(f)).spikeinterface_info == info
    assert (
        params_from_mapping({"input": "spikeinterface", "spikeinterface_info": info}).spikeinterface_info
        == info
    )


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ({}, "'input' is required"),
        ({"input": "intan"}, "unknown input 'intan'"),
        ({"input": "aind", "debug": "yes"}, "must be a boolean"),
        ({"input": "aind", "min_recording_duration": "sixty"}, "must be a number"),
        ({"input": "aind", "debug": True, "debug_duration": 0}, "must be positive"),
        ({"input": "spikeinterface"}, "needs spikeinterface_info"),
        ({"input": "aind", "spikeinterface_info": "{not json"}, "not valid JSON"),
        ({"input": "aind", "spikeinterface_info": "/no/such/file.json"}, "neither a JSON object"),
    ],
)
def test_bad_parameters_raise_clear_errors(mapping, match):
    with pytest.raises(DispatchError, match=match):
        params_from_mapping(mapping)


def test_config_schema_has_every_parameter():
    from ephys_assets.config import DispatchConfig
    from ephys_assets.dispatch.params import PARAM_KEYS

    assert set(PARAM_KEYS) <= set(DispatchConfig.model_fields)  # D28
    config = DispatchConfig(input="spikeglx", min_recording_duration=5, nwb_files=["a.nwb"])
    p = params_from_mapping(config.param_values())
    assert p.min_recording_duration == 5.0 and p.nwb_files == ("a.nwb",)
