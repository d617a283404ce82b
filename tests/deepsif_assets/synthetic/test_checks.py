"""The synthetic-source checks pass on a real output and catch each kind of corruption."""

import numpy as np
import pytest
import scipy.io

from deepsif_assets.synthetic.checks import check_synthetic_output
from tests.support.clipfactory import requires_octave

pytestmark = requires_octave


def _corrupt(full_run, tmp_path, **changes):
    _result, variables, _source = full_run
    data = {k: v for k, v in variables.items() if not k.startswith("__")}
    for name, change in changes.items():
        data[name] = change(np.array(data[name]))
    path = tmp_path / "corrupt.mat"
    scipy.io.savemat(path, data)
    return path


def test_a_real_output_passes(full_run):
    result, variables, _source = full_run
    rows = sum(result.clip_counts.values())
    checks = check_synthetic_output(result.output_file, rows)
    assert checks == {name: (True, []) for name in checks}, checks
    assert variables["nmm_idx"].max() < rows


@pytest.mark.parametrize(
    ("changes", "failing", "text"),
    [
        ({"nmm_idx": lambda v: v[:, :1]}, "variables_and_shapes", "nmm_idx has shape"),
        ({"scale_ratio": lambda v: np.where(v == v.flat[0], np.nan, v)}, "values_in_range", "NaN/Inf in scale_ratio"),
        ({"selected_region": lambda v: np.where(v == v.flat[0], 994.0, v)}, "values_in_range", "ids outside"),
        ({"mag_change": lambda v: np.where(v < 15213, v * 3, v)}, "values_in_range", "mag_change"),
        ({"current_snr": lambda v: v + 1}, "values_in_range", "current_snr has"),
        ({"nmm_idx": lambda v: v + 10_000}, "nmm_idx_in_clip_store", "outside"),
    ],
)
def test_each_corruption_fails_its_check(full_run, tmp_path, changes, failing, text):
    result, _variables, _source = full_run
    checks = check_synthetic_output(_corrupt(full_run, tmp_path, **changes), sum(result.clip_counts.values()))
    passed, problems = checks[failing]
    assert not passed and any(text in p for p in problems), problems
