"""Helpers for the browser test: headless Debian Chromium via Playwright, and instance set-up over GraphQL."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from neuro_pipelines.metadata import PLOT_SUFFIX
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
# Resolves when every finite CSS animation/transition has finished (spinners loop forever: left out).
FINITE_ANIMATIONS_DONE = """() => Promise.all(document.getAnimations()
    .filter(a => a.effect && a.effect.getComputedTiming().endTime !== Infinity).map(a => a.finished))"""
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


def open_newest_materialization(page, base_url: str, asset: str, run_id: str) -> None:
    """The asset's Events tab, whose newest materialization is selected and shown; check it is ``run_id``'s."""
    page.goto(f"{base_url}/assets/{asset}?view=events")
    # "Partition 0 materialized in run …" or, unpartitioned, "Materialized in run …"
    detail = page.get_by_text(re.compile(r"materialized in run [0-9a-f]{8}", re.IGNORECASE)).first
    detail.wait_for()
    assert run_id[:8] in detail.inner_text(), f"{asset}: newest materialization is not run {run_id[:8]}"


def plot_keys_shown(page) -> list[str]:
    """The metadata keys ending in ``_plot`` in the materialization's metadata table."""
    cells = page.locator("td").filter(has_text=re.compile(rf"^\w+{PLOT_SUFFIX}$"))
    return sorted({text.strip() for text in cells.all_inner_texts()})


def open_picture(page, key: str, screenshot: Path) -> dict:
    """Click ``key``'s "[Show Markdown]", wait for its picture to load, screenshot the page with the dialog and
    close it. Returns the dialog's title and heading and the image's natural size and alt text."""
    row = page.locator("tr").filter(has=page.get_by_text(key, exact=True))
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog").filter(has_text=key)
    image = dialog.locator("img")
    image.wait_for()
    image.evaluate("img => img.decode()")  # resolves once the data URL is decoded (rejects if it cannot be)
    info = image.evaluate("img => ({width: img.naturalWidth, height: img.naturalHeight, alt: img.alt})")
    info["heading"] = dialog.locator("strong").first.inner_text()
    page.evaluate(FINITE_ANIMATIONS_DONE)  # the dialog fades in: screenshot it opaque
    page.screenshot(path=screenshot)
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    return info
