"""`neuro-partitions` round trip in a temporary instance, as a user would run it from the shell."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.run(
        [str(BIN / "neuro-partitions"), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def home(tmp_path):
    return tmp_path / "dagster_home"


def test_add_list_delete_round_trip(home):
    assert run_cli(home, "add", "regions", "0", "5").returncode == 0
    assert run_cli(home, "add", "regions", "--range", "10:13").returncode == 0
    assert run_cli(home, "add", "recordings", "sess__block0_imec0.ap_recording1").returncode == 0
    listed = run_cli(home, "list", "regions")
    assert listed.returncode == 0
    assert listed.stdout.split() == ["0", "5", "10", "11", "12"]
    assert (home / "dagster.yaml").is_file(), "the CLI creates the instance on first use"

    deleted = run_cli(home, "delete", "regions", "5", "11", "99")
    assert deleted.returncode == 0
    assert "deleted 2 key(s)" in deleted.stdout and "not found (nothing to delete): 99" in deleted.stdout
    assert run_cli(home, "list", "regions").stdout.split() == ["0", "10", "12"]
    assert run_cli(home, "list", "recordings").stdout.split() == ["sess__block0_imec0.ap_recording1"]


@pytest.mark.parametrize(
    ("partitions", "key", "reason"),
    [
        ("recordings", "../escape", "path separator"),
        ("recordings", "a..b", "'..'"),
        ("recordings", "x" * 201, "characters long"),
        ("recordings", "has space", "characters outside"),
        ("regions", "994", "out of range"),
        ("regions", "007", "canonical"),
    ],
)
def test_bad_keys_rejected_with_clear_message(home, partitions, key, reason):
    result = run_cli(home, "add", partitions, key)
    assert result.returncode == 2
    assert reason in result.stderr
    assert not (home / "dagster.yaml").exists(), "nothing is written for a rejected key"


def test_range_only_for_regions(home):
    result = run_cli(home, "add", "recordings", "--range", "0:3")
    assert result.returncode == 2
    assert "regions partition set only" in result.stderr


def test_help_lists_examples_and_exit_codes(home):
    text = run_cli(home, "--help").stdout
    assert "neuro-partitions add regions --range 0:10" in text and "exit codes" in text
    assert "``" not in text, "no reStructuredText markup"
