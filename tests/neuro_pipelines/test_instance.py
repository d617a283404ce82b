import os

import dagster as dg
import yaml

from neuro_pipelines.instance import POOLS, ensure_instance


def test_instance_created_with_queue_retries_and_pools(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_instance(tmp_path / "home")
    assert os.environ["DAGSTER_HOME"] == str(home)
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    n_cpus = os.cpu_count() or 1
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == n_cpus
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    with dg.DagsterInstance.get() as instance:
        assert instance.run_retries_enabled
        for pool in POOLS:
            assert instance.event_log_storage.get_concurrency_info(pool).slot_count == n_cpus


def test_ensure_instance_keeps_user_changes(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_instance(tmp_path / "home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots("tvb", 7)
    ensure_instance(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("tvb").slot_count == 7
