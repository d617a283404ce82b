"""`dagster dev` starts from the repo root, serves the code location, and stops cleanly."""

import json
import urllib.request

from tests.support.dagster_dev_server import running_dagster_dev

ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName isPartitioned } }
"""


def test_dagster_dev_serves_both_groups_and_stops(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with running_dagster_dev(home, tmp_path / "dagster_dev.log") as server:
        with urllib.request.urlopen(f"{server.url}/server_info", timeout=10) as response:
            info = json.loads(response.read())
        assert info["dagster_webserver_version"].startswith("1.13")
        nodes = server.graphql(ASSETS_QUERY)["assetNodes"]
        groups = {node["groupName"] for node in nodes}
        assert {"ephys", "deepsif"} <= groups
        assert any(node["isPartitioned"] for node in nodes)
        process = server.process
    assert process.returncode is not None, "dagster dev is still running after the context closed"
