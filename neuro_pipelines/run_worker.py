"""A worker process that executes runs the CLIs created (``python -m neuro_pipelines.run_worker``).

The same execution Dagster's run launcher starts (``dagster api execute_run``), for several runs in turn: the run
ids read from standard input, one per line, until it is closed. A command keeps its workers for all its runs, so
the process start, the imports and the instance connection (≈ 3 CPU-s) are paid once per worker, not once per
run; a worker whose command died sees its input close and exits after its current run. Progress and results
travel through the instance's event log; the launcher follows them there, and learns that a run ended from the
run's id written to the file descriptor given as the only argument (so it need not read the event log often).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO


def _ids_from(stream: TextIO) -> Iterator[str]:
    # readline, not iteration: each id is executed as soon as its line arrives
    while line := stream.readline():
        if line.strip():
            yield line.strip()


def main(run_ids: Iterable[str], ended_fd: int) -> int:
    import dagster as dg
    from dagster._cli.api import _execute_run_command_body

    os.set_inheritable(ended_fd, False)  # not held by its children (Octave): end of file once this process exits
    failed = 0
    with dg.DagsterInstance.get() as instance:
        for run_id in run_ids:
            failed |= _execute_run_command_body(
                run_id, instance, write_stream_fn=lambda _event: None, set_exit_code_on_failure=True
            )
            with contextlib.suppress(BrokenPipeError):  # the launcher is gone: its runs are reaped
                os.write(ended_fd, f"{run_id}\n".encode())
    return failed


if __name__ == "__main__":
    sys.exit(main(_ids_from(sys.stdin), int(sys.argv[1])))
