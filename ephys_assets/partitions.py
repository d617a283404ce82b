"""The ``recordings`` dynamic partitions: one key per job JSON (keys: ``ephys_assets.dispatch.keys``)."""

import dagster as dg

RECORDINGS = "recordings"
recordings_partitions = dg.DynamicPartitionsDefinition(name=RECORDINGS)
