"""Dagster-free core shared by both domains: confined paths and atomic files, locks, keys, parameters, plots."""
