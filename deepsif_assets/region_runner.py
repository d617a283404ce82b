"""Run ONE region through Dagster in this process (used by ``deepsif-generate``, one child process per region).

``python -m deepsif_assets.region_runner '<json>'`` materializes the selected assets of one region partition in the
instance at ``$DAGSTER_HOME`` and prints, as its last line, ``RESULT {json}`` with success, error and clip counts.
A crash (even kill -9) of this process fails only this region: the parent sees a missing RESULT line.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

RESULT_PREFIX = "RESULT "


def run_region(spec: dict[str, Any]) -> dict[str, Any]:
    """Materialize ``spec["assets"]`` (subset of raw_nmm, nmm_spikes) for ``spec["region"]``; never raises."""
    import dagster as dg

    from deepsif_assets.assets import nmm_spikes, raw_nmm
    from resources.deepsif_paths import DeepsifPaths
    from resources.octave import OctaveResource

    region = str(spec["region"])
    started = time.perf_counter()
    outcome: dict[str, Any] = {
        "region": int(region),
        "success": False,
        "error": None,
        "assets": spec["assets"],
    }
    try:
        with dg.DagsterInstance.get() as instance:
            selection = [dg.AssetKey(name) for name in spec["assets"]]
            ops: dict[str, Any] = {"nmm_spikes": {"config": spec["nmm_spikes"]}}
            if "raw_nmm" in spec["assets"]:
                ops["raw_nmm"] = {"config": spec["raw_nmm"]}
            else:
                ops = {"nmm_spikes": ops["nmm_spikes"]}
            result = dg.materialize(
                [raw_nmm, nmm_spikes],
                selection=selection,
                instance=instance,
                partition_key=region,
                resources={
                    "deepsif_paths": DeepsifPaths(
                        anatomy_dir=spec["anatomy_dir"], source_dir=spec["source_dir"]
                    ),
                    "octave": OctaveResource(),
                },
                run_config=dg.RunConfig(ops=ops, loggers={"console": {"config": {"log_level": "INFO"}}}),
                tags={"region": region, "neuro/launched-by": "deepsif-generate"},
                raise_on_error=False,
            )
            outcome["run_id"] = result.run_id
            outcome["success"] = bool(result.success)
            if result.success:
                events = result.asset_materializations_for_node("nmm_spikes")
                if events:
                    meta = events[-1].metadata
                    outcome["total_clips"] = meta["total_clips"].value
                    outcome["peak_disk_bytes"] = meta["peak_disk_bytes"].value
            else:
                failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
                outcome["error"] = (
                    "; ".join(f"{e.step_key}: {root_message(e.step_failure_data.error)}" for e in failures)
                    or "run failed"
                )
    except Exception as exc:  # report, never propagate: one region must not stop the others
        outcome["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    outcome["seconds"] = round(time.perf_counter() - started, 2)
    return outcome


def root_message(error: Any) -> str:
    """The asset's own exception (the cause of Dagster's step wrapper), in a few lines."""
    if getattr(error, "cause", None) is not None:
        error = error.cause
    lines = [line.strip() for line in (error.message or "").splitlines() if line.strip()]
    lines = [line for line in lines if "preparing to exit" not in line and not line.startswith("---")]
    return " | ".join(lines[:4])[:600]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    outcome = run_region(json.loads(args[0]))
    print(RESULT_PREFIX + json.dumps(outcome), flush=True)
    return 0 if outcome["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
