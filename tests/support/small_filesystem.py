"""Real small file systems (tmpfs) for disk-full, free-space and read-only tests."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_filesystem(path: Path, size_bytes: int, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size_bytes`` at ``path`` for the duration (skips the test where mounting is refused).

    ``read_only``: mounted read-only (root can write into a chmod-protected folder, not into this)."""
    path.mkdir(parents=True)
    options = f"size={size_bytes}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
