import dagster as dg

from neuro_pipelines.definitions import defs


def test_definitions_validate_loadable():
    dg.Definitions.validate_loadable(defs)


def test_both_groups_and_all_resources_present():
    repo = defs.get_repository_def()
    groups = {node.group_name for node in repo.asset_graph.asset_nodes}
    assert {"ephys", "deepsif"} <= groups
    assert {"ephys_paths", "deepsif_paths", "octave"} <= set(repo.get_top_level_resources())


def test_partition_sets_are_the_dynamic_ones():
    repo = defs.get_repository_def()
    names = {
        node.partitions_def.name
        for node in repo.asset_graph.asset_nodes
        if isinstance(node.partitions_def, dg.DynamicPartitionsDefinition)
    }
    assert names == {"recordings", "regions"}


def test_automation_sensor_is_on_by_default():
    sensor = defs.resolve_sensor_def("automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_every_way_of_starting_work_has_a_named_job():
    names = {job.name for job in defs.jobs}
    assert {"ephys_dispatch_job", "deepsif_region_job", "deepsif_synthetic_job", "deepsif_regions_celery"} <= names
    sensor = defs.resolve_sensor_def("ephys_new_session_sensor")
    assert sensor.job_name == "ephys_dispatch_job"
    assert defs.resolve_sensor_def("run_hygiene_sensor").default_status == dg.DefaultSensorStatus.RUNNING


def test_two_hops_from_the_root_to_every_asset():
    """workspace.yaml → neuro_pipelines.definitions → <domain>.definitions, which lists the domain's assets."""
    import deepsif_assets.definitions as deepsif
    import ephys_assets.definitions as ephys

    listed = {key for domain in (ephys, deepsif) for a in domain.defs.assets for key in a.keys}
    assert listed == set(defs.get_repository_def().asset_graph.get_all_asset_keys())


def test_the_science_imports_no_dagster():
    """The pure packages must load (and work) without Dagster and without the composition root."""
    import subprocess
    import sys

    modules = [
        "neuro_core.files", "neuro_core.locks", "neuro_core.keys", "neuro_core.params", "neuro_core.progress",
        "ephys_assets.dispatch.plan", "ephys_assets.dispatch.outputs", "deepsif_assets.simulation",
        "deepsif_assets.synthetic.pipeline", "deepsif_assets.synthetic.checks", "deepsif_assets.extraction",
        "deepsif_assets.fingerprint", "deepsif_assets.resume", "deepsif_assets.validation", "deepsif_assets.plots",
    ]  # fmt: skip
    script = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'neuro_pipelines', 'resources'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
