"""Overall progress of many units of work: done, failed, elapsed, and an ETA people can plan with (pure)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class Progress:
    """``total`` units; call :meth:`finished` as each ends. The ETA assumes the remaining units take as long,
    per worker, as the finished ones did."""

    total: int
    unit: str = "regions"
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    def finished(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1

    def eta_seconds(self) -> float | None:
        if self.done == 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.done * (self.total - self.done)

    def line(self) -> str:
        elapsed = format_duration(time.monotonic() - self.started)
        eta = self.eta_seconds()
        remaining = "ETA unknown" if eta is None else ("finished" if self.done == self.total else f"ETA {format_duration(eta)}")
        return f"{self.done}/{self.total} {self.unit} done, {self.failed} failed, elapsed {elapsed}, {remaining}"


class ProgressReporter:
    """Prints progress lines for people: a live bar with the ETA on a terminal (tqdm), plain lines otherwise
    (logs, CI): every message as one line and, after each finished unit, the overall ``Progress.line()``."""

    def __init__(self, total: int, unit: str = "regions", stream: Any = None) -> None:
        self.progress = Progress(total, unit)
        self.stream = stream or sys.stdout
        self._bar = None
        if total and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit.rstrip("s"), file=self.stream, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n}/{total} {unit}s [{elapsed}<{remaining}]{postfix}")

    def say(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def finished(self, ok: bool) -> None:
        self.progress.finished(ok)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(f"{self.progress.failed} failed")
        else:
            self.say(f"== {self.progress.line()}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
