"""Dagster code location joining the ephys job-dispatch and DeepSIF data-generation domains."""
