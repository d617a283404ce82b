"""File-system helpers shared by both domains: confined paths, atomic writes, clean-up of our own temp files.

Every file the project writes goes through :func:`atomic_path` (a temp name ``.<name>.<random>.tmp`` beside the
target, renamed into place), so a reader never sees half a file; a process killed mid-write leaves only such a
temp file, which :func:`remove_stale_temp_files` deletes at the start of the next run that touches the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"
# The temp names our writers use: atomic_path (".<name>.<random>.tmp") and save_atomic.m (".partial_<name>").
_OWN_TEMP_NAME = re.compile(r"^(\.[^/]+\.[A-Za-z0-9_]{8}\.tmp|\.partial_[^/]+)$")


class PathEscapeError(ValueError):
    """A path built from a key or a name would leave its root folder."""


def confined_path(root: str | os.PathLike, *parts: str, follow_symlinks: bool = False) -> Path:
    """Join ``parts`` under ``root`` and refuse any result outside ``root``.

    Parts may never be empty or absolute or contain ``..`` that leaves the root. Outputs (the default) are also
    refused when a symlink inside the root points elsewhere; ``follow_symlinks=True`` accepts that, for inputs such
    as anatomy files kept in DataLad/git-annex trees (links into an object store).
    """
    root_path = Path(root).absolute()
    for part in parts:
        if not part or Path(part).is_absolute() or "\x00" in part:
            raise PathEscapeError(f"path component {part!r} is empty or absolute (root {root_path})")
    candidate = root_path.joinpath(*parts)
    lexical = os.path.normpath(candidate)
    if os.path.commonpath([os.path.normpath(root_path), lexical]) != os.path.normpath(root_path):
        raise PathEscapeError(f"path {candidate} escapes its root {root_path}")
    if not follow_symlinks:
        real_root = os.path.realpath(root_path)
        if os.path.commonpath([real_root, os.path.realpath(candidate)]) != real_root:
            raise PathEscapeError(f"path {candidate} escapes its root {root_path} through a symlink")
    return candidate


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def naming_path(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an OSError that names no file (``[Errno 28] No space left on device``) with ``path`` in it."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, f"{exc.strerror} while writing {path}", str(path)) from exc


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


def is_own_temp_name(name: str) -> bool:
    """True for the temporary names the project's own atomic writers use (nothing else is ever deleted)."""
    return bool(_OWN_TEMP_NAME.match(name))


def remove_stale_temp_files(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Delete temp files our writers left in ``folder`` when their process was killed; return what was removed.

    Call it only while holding the lock that guards the folder, so no live writer's temp file is taken away.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    removed = []
    for path in candidates:
        if is_own_temp_name(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def remove_stale_work_dirs(folder: str | os.PathLike, prefix: str) -> list[Path]:
    """Delete folders ``<folder>/<prefix>*`` that a killed run left (its private work folders); return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.glob(f"{prefix}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def check_writable_dir(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` if needed and prove it is writable (a probe file); a clear OSError naming it otherwise."""
    folder = Path(folder).absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise NotWritableError(f"{what} {folder} is not writable: {exc.strerror or exc}") from None
    return folder


class NotWritableError(OSError):
    """An output folder cannot be created or written."""
