"""Helpers for the browser test: headless Debian Chromium via Playwright, and instance set-up over GraphQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.dagster_dev_server import DagsterDev

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never a Playwright-downloaded browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}

SENSORS_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError {
    ... on RepositoryLocation { repositories { sensors { id name sensorState { status } } } } } } } } }"""
STOP_SENSOR = """mutation($id: String) { stopSensor(id: $id) {
    __typename ... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message } } }"""
ASSET_GROUPS_QUERY = "{ assetNodes { groupName } }"
SET_NUX_SEEN = "mutation { setNuxSeen }"
RUNS_QUERY = """{ runsOrError { __typename ... on Runs { results {
    runId status tags { key value } runConfigYaml assetSelection { path } stepStats { stepKey status } } } } }"""


@contextlib.contextmanager
def headless_chromium(profile_dir: Path) -> Iterator:
    """A fresh-profile headless Chromium page; the browser is always closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright refuses --user-data-dir in args: a persistent context on a fresh folder is the same thing.
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            context.set_default_timeout(60_000)
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


def sensors(server: DagsterDev) -> dict[str, dict]:
    """Every sensor of the code location by name (``id``, ``sensorState.status``)."""
    entries = server.graphql(SENSORS_QUERY)["workspaceOrError"]["locationEntries"]
    return {
        sensor["name"]: sensor
        for entry in entries
        for repo in entry["locationOrLoadError"]["repositories"]
        for sensor in repo["sensors"]
    }


def stop_all_sensors(server: DagsterDev) -> None:
    """Switch off every (default-on) sensor so that only the runs the test launches exist."""
    for name, sensor in sensors(server).items():
        result = server.graphql(STOP_SENSOR, {"id": sensor["id"]})["stopSensor"]
        assert result["__typename"] == "StopSensorMutationResult", f"could not stop {name}: {result}"
    still_running = [n for n, s in sensors(server).items() if s["sensorState"]["status"] != "STOPPED"]
    assert not still_running, f"sensors still running: {still_running}"


def dismiss_welcome_dialog(server: DagsterDev) -> None:
    """Record the one-time 'Join the Dagster community' dialog as seen, as its Skip button does."""
    assert server.graphql(SET_NUX_SEEN)["setNuxSeen"] is True


def all_runs(server: DagsterDev) -> dict[str, dict]:
    data = server.graphql(RUNS_QUERY)["runsOrError"]
    assert data["__typename"] == "Runs", data
    return {run["runId"]: run for run in data["results"]}


def asset_counts_by_group(server: DagsterDev) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in server.graphql(ASSET_GROUPS_QUERY)["assetNodes"]:
        counts[node["groupName"]] = counts.get(node["groupName"], 0) + 1
    return counts
