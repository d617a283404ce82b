"""Exclusive locks: the holder is named, a waiting lock times out, and a killed holder leaves no stale lock."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from neuro_core import locks
from neuro_core.locks import LockBusyError, LockUnsupportedError, exclusive_lock


def _hold(path, seconds: float = 60) -> subprocess.Popen:
    script = (
        "import sys, time\n"
        "from neuro_core.locks import exclusive_lock\n"
        f"with exclusive_lock({str(path)!r}, 'a test holder'):\n"
        "    print('held', flush=True)\n"
        f"    time.sleep({seconds})\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_busy_lock_names_its_holder_and_dies_with_it(tmp_path):
    path = tmp_path / "folder" / ".lock"
    holder = _hold(path)
    try:
        with pytest.raises(LockBusyError, match=f"pid {holder.pid}, a test holder"), exclusive_lock(path, "me"):
            pass
        started = time.monotonic()
        with pytest.raises(LockBusyError), exclusive_lock(path, "me", wait=True, timeout_s=0.5):
            pass
        assert 0.4 < time.monotonic() - started < 5
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with exclusive_lock(path, "me"):  # kill -9 left no stale lock behind
        assert f"pid {os.getpid()}, me" in path.read_text()


def test_a_file_system_without_flock_is_one_clear_error(tmp_path, monkeypatch):
    # No file system refusing flock can be mounted here; the kernel's answer on one (ENOLCK, as NFS without a
    # lock manager gives) is what this stands in for.
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    path = tmp_path / "shared" / ".lock"
    expected = r"cannot lock .*shared/\.lock: its file system does not support flock"
    with pytest.raises(LockUnsupportedError, match=expected), exclusive_lock(path, "a test"):
        pytest.fail("the block must not run without the lock")
