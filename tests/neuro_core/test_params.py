"""One definition per parameter: flags, ranges and help derived from the dataclass field."""

import argparse
from dataclasses import dataclass

import pytest

from neuro_core.params import (
    ParamError,
    add_param_arguments,
    check_param_ranges,
    param,
    params_dict,
    values_from_namespace,
)


@dataclass(frozen=True)
class Example:
    dt: float = param(0.5, "integration step", gt=0, unit="ms")
    n_segments: int = param(20, "segments", ge=1, flag="--segments", aliases=("--n_segments",))
    iterations: tuple[int, ...] = param((0, 1, 2), "iterations", ge=0)
    engine: str = param("fast", "engine", choices=("fast", "tvb"))
    keep_raw: bool = param(False, "keep raw data (≈ 15 % of the disk)")
    hidden: int = param(3, "config only", cli=False)

    def __post_init__(self) -> None:
        check_param_ranges(self)


def test_flags_defaults_choices_and_help_come_from_the_field():
    parser = argparse.ArgumentParser()
    add_param_arguments(parser, Example)
    text = parser.format_help()
    for shown in ("--dt DT", "(ms); > 0 [default: 0.5]", "--segments N_SEGMENTS", "--n_segments", "{fast,tvb}",
                  "--keep-raw, --no-keep-raw", "(≈ 15 % of the disk) [default: off]", "[default: 0 1 2]"):
        assert shown in text, shown
    assert "--hidden" not in text
    args = parser.parse_args(["--segments", "3", "--iterations", "2", "--keep-raw", "--engine", "tvb"])
    assert Example(**values_from_namespace(args, Example)) == Example(n_segments=3, iterations=(2,), keep_raw=True, engine="tvb")
    with pytest.raises(SystemExit):
        parser.parse_args(["--engine", "gpu"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dt": 0}, "Example.dt=0 is invalid: expected a number > 0"),
        ({"n_segments": 0}, "expected a number ≥ 1"),
        ({"iterations": (0, -1)}, "Example.iterations=(0, -1) (item -1) is invalid"),
        ({"engine": "gpu"}, "expected one of ['fast', 'tvb']"),
        ({"dt": float("nan")}, "a finite number"),
    ],
)
def test_ranges_are_checked_with_the_field_name(kwargs, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Example(**kwargs)


def test_params_dict_gives_json_ready_values():
    assert params_dict(Example()) == {
        "dt": 0.5, "n_segments": 20, "iterations": [0, 1, 2], "engine": "fast", "keep_raw": False, "hidden": 3,
    }  # fmt: skip


def test_two_sets_with_a_shared_name_stay_apart_with_a_prefix():
    parser = argparse.ArgumentParser()
    add_param_arguments(parser, Example, only=["dt"])
    add_param_arguments(parser, Example, only=["engine"], dest_prefix="other_")
    args = parser.parse_args(["--engine", "tvb"])
    assert args.other_engine == "tvb" and not hasattr(args, "engine")
