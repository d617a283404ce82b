"""End to end in a real browser: `dagster dev` + headless Chromium, materializing from the UI like a user.

The instance lives in tmp_path (DAGSTER_HOME) and every data/results root under it (NEURO_PIPELINES_VAR_DIR).
The two default-on sensors are switched off before any data exists, so the only runs are the ones launched here.
Screenshots go to ``test-artifacts/ui/`` in the repo root (git-ignored).
"""

import itertools
import json
import re
import time

import dagster as dg
import pytest
import yaml

from deepsif_assets.partitions import REGIONS
from ephys_assets.dispatch.params import params_from_mapping
from ephys_assets.dispatch.plan import plan_dispatch
from ephys_assets.dispatch.watch import detect_input_format
from ephys_assets.partitions import RECORDINGS
from ephys_assets.sample_data import make_demo_session
from neuro_core.project import PROJECT_ROOT
from neuro_pipelines.instance import ensure_instance
from tests.support.browser import (
    CHROMIUM,
    all_runs,
    asset_counts_by_group,
    dismiss_welcome_dialog,
    headless_chromium,
    stop_all_sensors,
)
from tests.support.dagster_dev_server import running_dagster_dev

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium package is not installed"),
]

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "ui"
RUN_TIMEOUT_MS = 180_000
REGION_KEY = "0"
# Short simulation typed into the launchpad: 2 × 1 s per iteration instead of 20 × 10 s.
SHORT_RAW_NMM = {"segment_ms": 1000, "n_segments": 2}


def _run_id_from_url(url: str) -> str:
    match = re.search(r"/runs/([0-9a-f-]{36})", url)
    assert match, f"not a run page: {url}"
    return match.group(1)


def _wait_for_run_outcome(page) -> str:
    """Wait (bounded) on the run page until its status tag reads Success or Failure; return it."""
    outcome = page.get_by_text("Success", exact=True).or_(page.get_by_text("Failure", exact=True))
    outcome.first.wait_for(timeout=RUN_TIMEOUT_MS)
    return outcome.first.inner_text().strip()


def _materialize_recording(page, base_url: str, key: str) -> str:
    """Asset page → Materialize… → pick one partition in the selector → Launch 1 run → View; returns run id."""
    page.goto(f"{base_url}/assets/ephys_job")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize ephys_job")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").fill(key)
    page.get_by_role("dialog").filter(has=page.get_by_placeholder("Filter partitions")).get_by_text(
        key, exact=True
    ).first.click()
    dialog.get_by_text("Launch runs to materialize ephys_job").click()  # close the partition list
    assert dialog.get_by_text("1 partition", exact=True).is_visible()
    dialog.get_by_role("button", name="Launch 1 run").click()
    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}"))
    toast.wait_for()
    page.get_by_role("link", name="View", exact=True).click()  # the toast's link to the run
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    return _run_id_from_url(page.url)


def _materialize_region(page, base_url: str, region_key: str) -> str:
    """Region job graph → Materialize all ▾ → Open launchpad → partition + short YAML → Materialize."""
    page.goto(f"{base_url}/locations/neuro_pipelines/jobs/deepsif_region_job")
    page.get_by_role("button", name="Materialize all…").wait_for()
    page.get_by_role("button", name="arrow_drop_down", exact=True).first.click()
    page.get_by_role("menuitem", name="Open launchpad").click()
    launchpad = page.get_by_role("dialog").filter(has_text="Launchpad")
    partition = launchpad.get_by_placeholder("Partition")
    partition.click()
    partition.fill(region_key)
    page.get_by_role("menuitem", name=region_key, exact=True).click()
    launchpad.get_by_text(f"partition: {region_key}", exact=True).wait_for()
    # Replace the scaffolded defaults with a short config (nmm_spikes keeps its defaults). insert_text is one
    # input event, so the editor's auto-indent does not re-indent the YAML.
    config_yaml = yaml.safe_dump({"ops": {"raw_nmm": {"config": SHORT_RAW_NMM}}}, sort_keys=False)
    launchpad.locator(".CodeMirror").first.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(config_yaml)
    launchpad.get_by_text("No errors", exact=True).wait_for()
    page.screenshot(path=ARTIFACTS / "deepsif_launchpad.png")
    launchpad.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    return _run_id_from_url(page.url)


def group_node_sizes(body_text: str, groups: dict[str, int]) -> dict[str, int]:
    """Assets per collapsed group node as drawn: the line after the group's last mention is "N assets", or status
    badges (one number per line) that add up to N. Groups not (yet) drawn are left out."""
    lines = [line.strip() for line in body_text.splitlines() if line.strip()]
    sizes = {}
    for group in groups:
        mentions = [i for i, line in enumerate(lines) if line == group]
        if not mentions:
            continue
        after = lines[mentions[-1] + 1 :]
        if after and (label := re.fullmatch(r"(\d+) assets?", after[0])):
            sizes[group] = int(label.group(1))
            continue
        badges = list(itertools.takewhile(str.isdigit, after))
        if badges:
            sizes[group] = sum(int(b) for b in badges)
    return sizes


def test_ui_materializes_a_recording_and_a_region(tmp_path, monkeypatch):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "dagster_home"
    var = tmp_path / "var"
    data_root = var / "ephys" / "data"
    results_root = var / "ephys" / "results"
    source_dir = var / "deepsif" / "source"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_instance(home)  # the demo instance: dagster.yaml with run queue, pools tvb/octave

    started = time.monotonic()
    with running_dagster_dev(
        home, tmp_path / "dagster_dev.log", env={"NEURO_PIPELINES_VAR_DIR": str(var)}
    ) as server:
        # Sensors off before any session exists: nothing can be launched behind the test's back.
        stop_all_sensors(server)
        dismiss_welcome_dialog(server)
        group_sizes = asset_counts_by_group(server)
        assert {"ephys", "deepsif"} <= set(group_sizes)

        session = make_demo_session(data_root)
        params = params_from_mapping({"input": detect_input_format(session)})
        plan = plan_dispatch(data_root, params, [session.name])
        assert len(plan.keys) >= 2
        key_index = 0
        key = plan.keys[key_index]
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(RECORDINGS, list(plan.keys))
            instance.add_dynamic_partitions(REGIONS, [REGION_KEY])

        with headless_chromium(tmp_path / "chromium-profile") as page:
            # (1) Asset graph: both groups are drawn (listed in the sidebar and as group nodes in the graph).
            page.goto(f"{server.url}/asset-groups")
            for group in ("ephys", "deepsif"):
                shown = page.get_by_text(group, exact=True)
                shown.first.wait_for()
                assert shown.count() >= 2, f"group {group} is not both listed and drawn"
            # Each collapsed group node states how many assets it holds: "N assets" while statuses load, then
            # status badges whose counts add up to N. The graph layout runs in a web worker and can take long on a
            # loaded 2-core machine.
            expected = {group: group_sizes[group] for group in ("ephys", "deepsif")}
            deadline = time.monotonic() + 150
            while (shown_sizes := group_node_sizes(page.inner_text("body"), expected)) != expected:
                assert time.monotonic() < deadline, f"group nodes show {shown_sizes}, expected {expected}"
                time.sleep(1)
            assert not page.get_by_text("Join the Dagster community").is_visible()
            page.screenshot(path=ARTIFACTS / "asset_graph.png")

            # (2) One recording partition of ephys_job, picked in the partition selector.
            ephys_run_id = _materialize_recording(page, server.url, key)
            assert _wait_for_run_outcome(page) == "Success", "ephys_job run did not succeed"
            page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for()
            page.screenshot(path=ARTIFACTS / "ephys_run_success.png")

            # (3) Region 0 of raw_nmm + nmm_spikes with a short config typed into the launchpad.
            region_run_id = _materialize_region(page, server.url, REGION_KEY)
            assert _wait_for_run_outcome(page) == "Success", "region run did not succeed"
            page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for()
            page.screenshot(path=ARTIFACTS / "deepsif_run_success.png")

            # (4) The runs list in the UI shows both runs.
            page.goto(f"{server.url}/runs")
            for run_id in (ephys_run_id, region_run_id):
                page.locator(f"a[href*='/runs/{run_id}']").first.wait_for()
            page.screenshot(path=ARTIFACTS / "runs.png")

        # Cross-check through GraphQL: exactly the two runs the UI launched, both successful, with the
        # partition picked in the UI and the config typed into the launchpad.
        runs = all_runs(server)
        assert set(runs) == {ephys_run_id, region_run_id}
        ephys_run, region_run = runs[ephys_run_id], runs[region_run_id]
        assert ephys_run["status"] == region_run["status"] == "SUCCESS"
        assert {"key": "dagster/partition", "value": key} in ephys_run["tags"]
        assert {"key": "dagster/partition", "value": REGION_KEY} in region_run["tags"]
        assert {tuple(a["path"]) for a in region_run["assetSelection"]} == {("raw_nmm",), ("nmm_spikes",)}
        assert {s["stepKey"]: s["status"] for s in region_run["stepStats"]} == {
            "raw_nmm": "SUCCESS",
            "nmm_spikes": "SUCCESS",
        }
        launched_config = yaml.safe_load(region_run["runConfigYaml"])
        assert launched_config["ops"]["raw_nmm"]["config"] == SHORT_RAW_NMM
    assert time.monotonic() - started < 240, "browser test exceeded its 4-minute budget"

    # The files landed under tmp (never in the project): one job JSON for the chosen recording...
    job_files = sorted(results_root.rglob("job_*.json"))
    assert [p.name for p in job_files] == [f"job_{key_index}.json"]
    written = json.loads(job_files[0].read_text())
    assert written["recording_name"] == plan.result.jobs[key_index].recording_name
    # ...and region 0 was simulated, extracted and cleaned up (raw data removed after extraction).
    assert (source_dir / "nmm_spikes" / f"a{REGION_KEY}").is_dir()
    assert not (source_dir / "raw_nmm" / f"a{REGION_KEY}").exists()
