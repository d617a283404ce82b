"""Start-up check of the shared folders a worker writes to: exclusive ``flock`` locks and atomic renames.

Region steps lock ``<source>/.locks/a<r>.lock`` and write every file under a temporary name renamed into place.
On a file system without working ``flock`` (or read-only, or missing) every step would fail at its start; this
check makes the worker refuse to start instead, naming the folder (exit status 2).

    python deploy/celery/preflight.py /shared/deepsif/source [/shared/dagster-storage …]

It cannot tell whether locks are shared between machines: an NFS mount with ``local_lock=flock``/``all`` or
NFSv3 with ``nolock`` takes local-only locks and passes (see deploy/README.md for supported file systems).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

from neuro_core.files import write_text_atomic
from neuro_core.locks import LockBusyError, exclusive_lock


def check_folder(folder: Path) -> str | None:
    """None if ``folder`` takes a lock and an atomic rename; else what failed."""
    if not folder.is_dir():
        # Never create it: a missing mount would otherwise pass as a folder on the local disk.
        return f"{folder}: not a folder (not mounted?)"
    stem = folder / ".locks" / f".preflight-{socket.gethostname()}-{os.getpid()}"
    lock, renamed = Path(f"{stem}.lock"), Path(f"{stem}.txt")
    try:
        # A lock file of its own per process: several workers may start at once on one folder.
        with exclusive_lock(lock, "start-up check of a worker"):
            write_text_atomic(renamed, "rename check\n")
            if renamed.read_text() != "rename check\n":
                return f"{folder}: a file written and renamed there reads back differently"
    except LockBusyError as exc:  # cannot happen for a fresh per-process file, unless locks are broken
        return f"{folder}: {exc}"
    except OSError as exc:
        return f"{folder}: {exc}"
    finally:
        for path in (lock, renamed):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
    return None


def main(folders: list[str]) -> int:
    problems = [problem for folder in folders if (problem := check_folder(Path(folder)))]
    for problem in problems:
        print(f"error: shared folder unusable for the workers: {problem}", file=sys.stderr)
    if problems:
        print(
            "Region steps need exclusive flock locks and atomic renames there (local disk, NFSv4 with "
            "locking, CephFS, Lustre with -o flock); see deploy/README.md.",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
