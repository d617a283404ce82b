"""A worker process that executes runs the CLIs created (``python -m neuro_pipelines.run_worker RUN_ID …``).

The same execution Dagster's run launcher starts (``dagster api execute_run``), for one or several runs in turn,
so a dispatch of many small runs pays the process start and the imports once. Progress and results travel
through the instance's event log only; the launcher follows them there.
"""

from __future__ import annotations

import sys


def main(run_ids: list[str]) -> int:
    import dagster as dg
    from dagster._cli.api import _execute_run_command_body

    failed = 0
    with dg.DagsterInstance.get() as instance:
        for run_id in run_ids:
            failed |= _execute_run_command_body(
                run_id, instance, write_stream_fn=lambda _event: None, set_exit_code_on_failure=True
            )
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
