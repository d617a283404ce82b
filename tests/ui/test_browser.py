"""End to end in a real browser: `dagster dev` + headless Chromium, materializing from the UI like a user.

The instance lives in tmp_path (DAGSTER_HOME) and every data/results root under it (NEURO_PIPELINES_VAR_DIR).
The two default-on sensors are switched off before any data exists, so the only runs are the ones launched here.
Each asset's newest materialization is then opened as a user would (Events tab → "[Show Markdown]") and its
pictures checked: present, decoded, at least 800 px wide. Screenshots go to ``test-artifacts/ui/`` in the repo
root (git-ignored), one per picture: ``<asset>_<key>.png``.
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
from neuro_core.plots import MIN_WIDTH_PX
from neuro_core.project import PROJECT_ROOT
from neuro_pipelines.instance import ensure_instance
from tests.support.browser import (
    CHROMIUM,
    all_runs,
    asset_counts_by_group,
    dismiss_welcome_dialog,
    headless_chromium,
    open_newest_materialization,
    open_picture,
    plot_keys_shown,
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
# Short simulation typed into the launchpad: 2 × 5 s per iteration instead of 20 × 10 s, long enough for region
# 0 to spike (≥ 1 clip), which the clip picture and the synthetic source need.
SHORT_RAW_NMM = {"segment_ms": 5000, "n_segments": 2}
SYNTHETIC_CONFIG = {"mode": "test"}  # 12 samples from region 0's clip(s): seconds, not minutes
PICTURES = {
    "ephys_job": ["probe_plot", "recording_plot"],
    "raw_nmm": ["activity_plot", "region_plot"],
    "nmm_spikes": ["clips_plot"],
    "synthetic_source": ["clips_per_region_plot", "distributions_plot", "example_sources_plot"],
}


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


def _materialize_from_launchpad(
    page, base_url: str, job: str, config: dict, partition: str | None = None
) -> str:
    """Job graph → Materialize all ▾ → Open launchpad → (partition) + YAML typed in → Materialize; returns the
    run id."""
    page.goto(f"{base_url}/locations/neuro_pipelines/jobs/{job}")
    # "Materialize all…" for the partitioned region job, "Materialize" for the one-asset synthetic job.
    page.get_by_role("button", name=re.compile(r"\bMaterialize( all…)?$")).first.wait_for()
    page.get_by_role("button", name="arrow_drop_down", exact=True).first.click()
    page.get_by_role("menuitem", name="Open launchpad").click()
    launchpad = page.get_by_role("dialog").filter(has_text="Launchpad")
    if partition is not None:
        box = launchpad.get_by_placeholder("Partition")
        box.click()
        box.fill(partition)
        page.get_by_role("menuitem", name=partition, exact=True).click()
        launchpad.get_by_text(f"partition: {partition}", exact=True).wait_for()
    # Replace the scaffolded defaults with the given config (other ops keep their defaults). insert_text is one
    # input event, so the editor's auto-indent does not re-indent the YAML.
    launchpad.locator(".CodeMirror").first.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(yaml.safe_dump(config, sort_keys=False))
    launchpad.get_by_text("No errors", exact=True).wait_for()
    page.screenshot(path=ARTIFACTS / f"{job}_launchpad.png")
    launchpad.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    return _run_id_from_url(page.url)


def _check_pictures(page, base_url: str, asset: str, run_id: str) -> dict[str, dict]:
    """Open the asset's newest materialization (made by ``run_id``); every expected picture opens, decodes and is
    at least 800 px wide under a heading that says what it shows."""
    open_newest_materialization(page, base_url, asset, run_id)
    assert plot_keys_shown(page) == PICTURES[asset], f"{asset}: pictures in the metadata table"
    shown = {}
    for key in PICTURES[asset]:
        info = open_picture(page, key, ARTIFACTS / f"{asset}_{key}.png")
        assert info["width"] >= MIN_WIDTH_PX, f"{asset}.{key} is {info['width']} px wide"
        assert info["heading"] == info["alt"] and len(info["heading"].split()) >= 4, info
        shown[key] = info
    return shown


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
            region_config = {"ops": {"raw_nmm": {"config": SHORT_RAW_NMM}}}
            region_run_id = _materialize_from_launchpad(
                page, server.url, "deepsif_region_job", region_config, REGION_KEY
            )
            assert _wait_for_run_outcome(page) == "Success", "region run did not succeed"
            page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for()
            page.screenshot(path=ARTIFACTS / "deepsif_run_success.png")

            # (4) The synthetic source over the one materialized region, in test mode.
            synthetic_config = {"ops": {"synthetic_source": {"config": SYNTHETIC_CONFIG}}}
            synthetic_run_id = _materialize_from_launchpad(
                page, server.url, "deepsif_synthetic_job", synthetic_config
            )
            assert _wait_for_run_outcome(page) == "Success", "synthetic run did not succeed"
            page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for()

            # (5) The runs list in the UI shows the three runs.
            page.goto(f"{server.url}/runs")
            for run_id in (ephys_run_id, region_run_id, synthetic_run_id):
                page.locator(f"a[href*='/runs/{run_id}']").first.wait_for()
            page.screenshot(path=ARTIFACTS / "runs.png")

            # (6) Each asset's newest materialization shows its pictures.
            makers = {
                "ephys_job": ephys_run_id,
                "raw_nmm": region_run_id,
                "nmm_spikes": region_run_id,
                "synthetic_source": synthetic_run_id,
            }
            shown = {
                asset: _check_pictures(page, server.url, asset, run_id) for asset, run_id in makers.items()
            }
            assert shown["raw_nmm"]["region_plot"]["heading"].startswith(f"Region {REGION_KEY} ")

        # Cross-check through GraphQL: exactly the three runs the UI launched, all successful, with the
        # partition picked in the UI and the config typed into the launchpad.
        runs = all_runs(server)
        assert set(runs) == {ephys_run_id, region_run_id, synthetic_run_id}
        ephys_run, region_run, synthetic_run = runs[ephys_run_id], runs[region_run_id], runs[synthetic_run_id]
        assert ephys_run["status"] == region_run["status"] == synthetic_run["status"] == "SUCCESS"
        assert {"key": "dagster/partition", "value": key} in ephys_run["tags"]
        assert {"key": "dagster/partition", "value": REGION_KEY} in region_run["tags"]
        assert {tuple(a["path"]) for a in region_run["assetSelection"]} == {("raw_nmm",), ("nmm_spikes",)}
        assert {s["stepKey"]: s["status"] for s in region_run["stepStats"]} == {
            "raw_nmm": "SUCCESS",
            "nmm_spikes": "SUCCESS",
        }
        launched_config = yaml.safe_load(region_run["runConfigYaml"])
        assert launched_config["ops"]["raw_nmm"]["config"] == SHORT_RAW_NMM
        assert {tuple(a["path"]) for a in synthetic_run["assetSelection"]} == {("synthetic_source",)}
        assert (
            yaml.safe_load(synthetic_run["runConfigYaml"])["ops"]["synthetic_source"]["config"]
            == SYNTHETIC_CONFIG
        )
    assert time.monotonic() - started < 240, "browser test exceeded its 4-minute budget"

    # The files landed under tmp (never in the project): one job JSON for the chosen recording...
    job_files = sorted(results_root.rglob("job_*.json"))
    assert [p.name for p in job_files] == [f"job_{key_index}.json"]
    written = json.loads(job_files[0].read_text())
    assert written["recording_name"] == plan.result.jobs[key_index].recording_name
    # ...and region 0 was simulated, extracted and cleaned up (raw data removed after extraction).
    assert (source_dir / "nmm_spikes" / f"a{REGION_KEY}").is_dir()
    assert not (source_dir / "raw_nmm" / f"a{REGION_KEY}").exists()
    # ...and the synthetic source was written from it.
    assert (source_dir / "test_sample_source1.mat").is_file()
