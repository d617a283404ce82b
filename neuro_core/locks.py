"""Exclusive folder and file locks (``flock``) with the holder named, for every place two writers can meet.

``flock`` locks belong to the open file and die with their process, so ``kill -9``, an OOM kill or a reboot
never leaves a stale lock behind. On a shared data folder this needs a file system with working ``flock``
(local disks, NFSv4 with lock support, CephFS, Lustre with ``-o flock``); where locking is unsupported,
:func:`exclusive_lock` fails at once with :class:`LockUnsupportedError` naming the path instead of silently
running unprotected.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path


class LockBusyError(RuntimeError):
    """Another process holds the lock."""


class LockUnsupportedError(OSError):
    """The file system of the lock file does not support ``flock``."""


def holder_description(what: str) -> str:
    """Who holds a lock: host, pid and what it is doing (written into the lock file for the error message)."""
    return f"host {socket.gethostname()}, pid {os.getpid()}, {what}"


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str, *, wait: bool = False, timeout_s: float | None = None
                   ) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` while the block runs.

    ``wait=False`` fails at once with :class:`LockBusyError` naming the holder; ``wait=True`` blocks (up to
    ``timeout_s`` when given, then LockBusyError). The lock file itself is kept (deleting it would let two
    processes lock two different inodes); it only holds the current holder's description.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        _acquire(handle, path, wait=wait, timeout_s=timeout_s)
        handle.seek(0)
        handle.truncate()
        handle.write(holder_description(what))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire(handle, path: Path, *, wait: bool, timeout_s: float | None) -> None:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not wait or (deadline is not None and time.monotonic() >= deadline):
                handle.seek(0)
                holder = handle.read().strip() or "unknown process"
                raise LockBusyError(f"{path} is locked by {holder}") from None
            time.sleep(0.1)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise LockUnsupportedError(
                    exc.errno,
                    f"cannot lock {path}: its file system does not support flock ({exc.strerror}); "
                    "use a local disk or NFSv4/CephFS with locking enabled",
                ) from None
            raise
