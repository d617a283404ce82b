"""Sensors that span both domains: declarative automation and run hygiene."""

import dagster as dg

from neuro_pipelines.instance import reap_dead_runs

# Evaluates the automation conditions of every asset (e.g. the synthetic source once its regions are done).
# On by default, so a fresh `dagster dev` automates without a click; switch it off in the UI (Automation tab).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


@dg.sensor(
    name="run_hygiene_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Marks failed the runs whose worker process on this host died (kill -9, OOM, reboot) and "
    "releases their pool slots, so they never block later runs.",
)
def run_hygiene_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance)
    return dg.SkipReason(f"marked {len(reaped)} dead run(s) failed: {reaped}" if reaped else "no dead runs")
