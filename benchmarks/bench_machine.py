"""What every benchmark reports about the machine it ran on, and how it keeps timings comparable."""

from __future__ import annotations

import os
from pathlib import Path


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages (timings are only meaningful on an idle machine)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pin_one_core() -> str:
    """Pin this process to one core (single-core timings); says where, or that it could not."""
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    except (AttributeError, OSError):
        return "not pinned"
