"""What a region still needs: skip only complete clips of the requested configuration."""

import json

from deepsif_assets.fingerprint import fingerprint_of
from deepsif_assets.layout import RegionLayout
from deepsif_assets.resume import Action, RegionPlan, plan_region
from tests.support.region_fixtures import write_region_raw


def _configuration(n_segments: int) -> dict:
    configuration = {"simulation": {"params": {"n_segments": n_segments}}, "extraction": {}, "leadfield": {}}
    configuration["fingerprint"] = fingerprint_of(configuration)
    return configuration


def _complete_clips(layout: RegionLayout, configuration: dict | None) -> None:
    import numpy as np
    import scipy.io

    layout.clip_dir.mkdir(parents=True)
    for m in (0, 1, 2):
        layout.marker_path(m).parent.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(layout.marker_path(m), {"num_spike": 0, "spike_time": np.zeros((1, 0))})
    if configuration is not None:
        layout.configuration_path.write_text(json.dumps(configuration))


def test_plans(tmp_path):
    requested, other = _configuration(20), _configuration(2)
    assert requested["fingerprint"] != other["fingerprint"]
    nothing = RegionLayout(tmp_path, 0)
    assert plan_region(nothing, (0, 1, 2), False, requested).action is Action.SIMULATE

    raw_same = RegionLayout(tmp_path, 1)
    write_region_raw(tmp_path, 1, simulation=requested["simulation"])
    assert plan_region(raw_same, (0, 1, 2), False, requested).action is Action.EXTRACT
    raw_other = RegionLayout(tmp_path, 2)
    write_region_raw(tmp_path, 2, simulation=other["simulation"])
    plan = plan_region(raw_other, (0, 1, 2), False, requested)
    assert plan.action is Action.SIMULATE and plan.conflicts == [], "raw data is not a finished region"

    done = RegionLayout(tmp_path, 3)
    _complete_clips(done, requested)
    assert plan_region(done, (0, 1, 2), True, requested).action is Action.SKIP
    assert plan_region(done, (0, 1, 2), False, requested).action is Action.EXTRACT, "adopted to be recorded"

    changed = RegionLayout(tmp_path, 4)
    _complete_clips(changed, other)
    plan = plan_region(changed, (0, 1, 2), True, requested)
    assert plan.action is Action.SIMULATE and plan.conflicts == ["simulation.params.n_segments: 2 → 20"]
    unknown = RegionLayout(tmp_path, 5)
    _complete_clips(unknown, None)
    assert plan_region(unknown, (0, 1, 2), True, requested).conflicts, "unrecorded clips are never trusted"
    # an extraction killed between its last clip and recording the configuration: the raw data is still there
    killed = RegionLayout(tmp_path, 6)
    write_region_raw(tmp_path, 6, simulation=requested["simulation"])
    _complete_clips(killed, None)
    assert plan_region(killed, (0, 1, 2), False, requested) == RegionPlan(6, Action.EXTRACT)
    write_region_raw(tmp_path, 7, simulation=other["simulation"])
    _complete_clips(RegionLayout(tmp_path, 7), None)
    assert plan_region(RegionLayout(tmp_path, 7), (0, 1, 2), False, requested).conflicts
