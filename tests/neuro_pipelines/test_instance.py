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


def test_generated_instance_monitors_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    config = yaml.safe_load((ensure_instance(tmp_path / "home") / "dagster.yaml").read_text())
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_a_run_whose_worker_died_is_failed_and_its_pool_slot_released(tmp_path, monkeypatch):
    """What kill -9 leaves: a STARTED run holding a `tvb` slot, its worker process gone."""
    import subprocess
    import sys

    from neuro_pipelines.instance import WORKER_TAG, WorkerProcess, reap_dead_runs

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_instance(tmp_path / "home")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = WorkerProcess.of(os.getpid())
    with dg.DagsterInstance.get() as instance:
        dead_run = instance.create_run_for_job(dg.GraphDefinition("g").to_job("j"), tags={WORKER_TAG: WorkerProcess.of(gone.pid).encode()})
        live_run = instance.create_run_for_job(dg.GraphDefinition("g").to_job("j"), tags={WORKER_TAG: alive.encode()})
        for run in (dead_run, live_run):
            instance.handle_run_event(run.run_id, dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name="j"))
            claim = instance.event_log_storage.claim_concurrency_slot("tvb", run.run_id, "step")
            assert claim.is_claimed
        assert len(instance.event_log_storage.get_concurrency_info("tvb").claimed_slots) == 2
    ensure_instance(home)  # what every entry point does when it starts
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(live_run.run_id).status == dg.DagsterRunStatus.STARTED
        (slot,) = instance.event_log_storage.get_concurrency_info("tvb").claimed_slots
        assert slot.run_id == live_run.run_id
        assert reap_dead_runs(instance) == []  # nothing left to reap


def test_worker_identity_survives_pid_reuse():
    from neuro_pipelines.instance import WorkerProcess

    me = WorkerProcess.of(os.getpid())
    assert WorkerProcess.decode(me.encode()) == me and me.is_alive() is True
    assert WorkerProcess(me.host, me.boot_id, me.pid, me.start_ticks + 1).is_alive() is False  # another process
    assert WorkerProcess(me.host, "another-boot", me.pid, me.start_ticks).is_alive() is False  # rebooted
    assert WorkerProcess("elsewhere", me.boot_id, me.pid, me.start_ticks).is_alive() is None  # cannot tell


def test_three_commands_started_at_once_on_an_empty_home_all_succeed(tmp_path):
    import subprocess
    import sys

    from ephys_assets import sample_data as sd

    data = tmp_path / "data"
    sd.write_spikeglx_session(data, run="s", durations_s=(0.02,), with_np2=False, with_nidq=False)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "empty_home")}
    bin_dir = os.path.dirname(sys.executable)
    commands = [
        [f"{bin_dir}/ephys-dispatch", "--input", "spikeglx", "--data-dir", str(data), "--results-dir", str(tmp_path / f"r{i}")]
        for i in range(2)
    ] + [[f"{bin_dir}/neuro-partitions", "add", "regions", "--range", "0:3"]]
    processes = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    assert (tmp_path / "r0" / "job_0.json").read_text() == (tmp_path / "r1" / "job_0.json").read_text()
