"""Definitions of the ``ephys`` group: job-dispatch assets, resources and the new-session sensor."""

import dagster as dg

defs = dg.Definitions()
