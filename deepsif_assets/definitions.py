"""Definitions of the ``deepsif`` group: per-region simulation and clips, the synthetic source, resources."""

import dagster as dg

defs = dg.Definitions()
