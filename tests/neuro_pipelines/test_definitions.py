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
    sensor = defs.get_sensor_def("automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
