"""Small file-system helpers shared by both domains: confined paths and atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class PathEscapeError(ValueError):
    """A path built from a key or a name would leave its root folder."""


def confined_path(root: str | os.PathLike, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result outside ``root`` (``..``, absolute parts, symlinks)."""
    root_path = Path(root).absolute()
    for part in parts:
        if not part or Path(part).is_absolute() or "\x00" in part:
            raise PathEscapeError(f"path component {part!r} is empty or absolute (root {root_path})")
    candidate = root_path.joinpath(*parts)
    real_root = os.path.realpath(root_path)
    real_candidate = os.path.realpath(candidate)
    if os.path.commonpath([real_root, real_candidate]) != real_root:
        raise PathEscapeError(f"path {candidate} escapes its root {root_path}")
    return candidate


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` via a temp file and rename, so readers never see half a file."""
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return Path(target)


def write_json_atomic(target: str | os.PathLike, obj: Any, **dumps_kwargs: Any) -> Path:
    """``json.dumps`` ``obj`` (``indent=4`` unless given) and write it atomically."""
    dumps_kwargs.setdefault("indent", 4)
    return write_text_atomic(target, json.dumps(obj, **dumps_kwargs))


def tree_size_bytes(path: str | os.PathLike) -> int:
    """Total size of the regular files below ``path`` (0 if it does not exist)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
