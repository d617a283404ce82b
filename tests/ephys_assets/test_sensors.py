"""The new-session sensor: quiet period, new/unchanged/changed sessions, bad sessions, odd names."""

import json
import os
import time

import dagster as dg

from ephys_assets import sample_data as sd
from ephys_assets.partitions import RECORDINGS
from ephys_assets.sensors import ephys_new_session_sensor
from resources.ephys_paths import EphysPaths


def tick(instance, data, cursor=None, quiet=0.0, results=None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "ephys_paths": EphysPaths(
                data_root=str(data),
                results_root=str(results or data.parent / "r"),
                sensor_quiet_seconds=quiet,
            )
        },
    )
    return ephys_new_session_sensor(context)


def test_new_unchanged_changed_and_not_quiet(tmp_path):
    data = tmp_path / "data"
    sd.write_spikeglx_session(data, run="sessA", durations_s=(0.05,), with_np2=False, with_nidq=False)
    with dg.instance_for_test() as instance:
        waiting = tick(instance, data, quiet=3600)  # files were just written
        assert waiting.run_requests == [] and waiting.dynamic_partitions_requests == []
        first = tick(instance, data, cursor=waiting.cursor)  # quiet now: keys added, runs requested
        (add,) = first.dynamic_partitions_requests
        assert add.partition_keys == ["sessA_g0__block0_imec0.ap_recording1"]
        (request,) = first.run_requests
        assert request.partition_key == add.partition_keys[0] and request.tags["session"] == "sessA_g0"
        assert request.run_config["ops"]["ephys_job"]["config"] == {"sessions": ["sessA_g0"]}
        instance.add_dynamic_partitions(RECORDINGS, add.partition_keys)
        again = tick(instance, data, cursor=first.cursor)  # unchanged: nothing dispatched twice
        assert again.run_requests == [] and again.dynamic_partitions_requests == []
        params_file = data / "sessA_g0" / "ephys_dispatch.json"  # changed contents: dispatched again
        params_file.write_text(json.dumps({"split_segments": False}))
        old = time.time() - 120
        os.utime(params_file, (old, old))
        changed = tick(instance, data, cursor=again.cursor)
        keys = [r.partition_key for r in changed.run_requests]
        assert keys == ["sessA_g0__block0_imec0.ap_recording"]
        assert changed.run_requests[0].run_key != request.run_key
        kinds = {type(r).__name__: r.partition_keys for r in changed.dynamic_partitions_requests}
        assert kinds["DeleteDynamicPartitionsRequest"] == ["sessA_g0__block0_imec0.ap_recording1"]
        assert kinds["AddDynamicPartitionsRequest"] == keys


def test_bad_session_is_recorded_without_crashing(tmp_path):
    data = tmp_path / "data"
    folder = sd.write_spikeglx_session(
        data, run="bad", durations_s=(0.02,), with_np2=False, with_nidq=False, with_lf=False
    )
    with open(next(folder.glob("*.ap.bin")), "ab") as f:
        f.write(b"\x00")  # truncated frame
    with dg.instance_for_test() as instance:
        result = tick(instance, data)
        assert result.run_requests == []
        assert "truncated" in json.loads(result.cursor)["bad_g0"]["error"]


def test_unicode_sessions_get_distinct_keys_and_a_self_link_is_not_a_session(tmp_path):
    data = tmp_path / "data"
    for run in ("ünïcödé", "änïcödá"):
        sd.write_spikeglx_session(data, run=run, durations_s=(0.02,), with_np2=False, with_nidq=False)
    (data / "self_link").symlink_to(".")
    with dg.instance_for_test() as instance:
        result = tick(instance, data)
    keys = [r.partition_key for r in result.run_requests]
    assert len(keys) == len(set(keys)) == 2, keys
    sessions = sorted(r.tags["session"] for r in result.run_requests)
    assert sessions == ["änïcödá_g0", "ünïcödé_g0"]
    assert "self_link" not in json.loads(result.cursor)
    (add,) = result.dynamic_partitions_requests
    assert sorted(add.partition_keys) == sorted(keys)
