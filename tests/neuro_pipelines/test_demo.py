"""README command 1 as a user runs it: quiet by default, and what it prints is worth reading."""

import os
import subprocess
import sys

import pytest

NOISE = (
    "Context impl SQLiteImpl",
    "Will assume non-transactional DDL",
    "Running stamp_revision",
    "alembic",
    "ignoring const execution_exception",
    "Using categorical units",
    "SupersessionWarning",
    "Traceback",
)


@pytest.mark.slow
def test_the_demo_prints_no_chatter(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "NEURO_PIPELINES_VAR_DIR": str(tmp_path / "var")}
    demo = subprocess.run(
        [sys.executable, "-m", "neuro_pipelines.demo"], env=env, capture_output=True, text=True, timeout=900
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-4000:]
    noisy = [line for line in output.splitlines() if any(pattern in line for pattern in NOISE)]
    assert noisy == [], noisy
    assert "10/10 job files written" in output and "✓ synthetic source" in output
    assert len(output.splitlines()) < 120, f"{len(output.splitlines())} lines"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("ephys-dispatch", ["{aind,spikeglx,openephys,nwb,spikeinterface}", "[default: 30.0]", "exit codes"]),
        ("deepsif-generate", ["--start_region START_REGION, --start-region", "[default: 0.5]", "{fast,tvb}",
                              "[default: 20]", "[default: the cores", "[default: 4, fewer if the memory",
                              "exit codes", "examples"]),
    ],
)
def test_help_shows_defaults_choices_examples_and_exit_codes(command, shown):
    text = subprocess.run([os.path.join(os.path.dirname(sys.executable), command), "--help"],
                          capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "200"}).stdout
    for piece in shown:
        assert piece in text, piece


def test_usage_errors_exit_2():
    bin_dir = os.path.dirname(sys.executable)
    for command in (["deepsif-generate", "--start_region", "5"], ["ephys-dispatch", "--bogus"],
                    ["neuro-partitions", "frobnicate"]):
        result = subprocess.run([os.path.join(bin_dir, command[0]), *command[1:]], capture_output=True, text=True)
        assert result.returncode == 2 and "usage:" in result.stderr, command
