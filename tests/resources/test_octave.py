"""``OctaveResource`` with real GNU Octave: errors, timeout, guaranteed exit, MATLAB command construction."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from neuro_core.project import PROJECT_ROOT
from resources.octave import OctaveError, OctaveResource, matlab_literal

needs_octave = pytest.mark.skipif(shutil.which("octave-cli") is None, reason="GNU Octave is not installed")


def test_missing_executable_is_a_clear_error():
    with pytest.raises(OctaveError, match=r"'no-such-octave' not found on PATH.*install GNU Octave"):
        OctaveResource(executable="no-such-octave").call("version", nout=1)
    with pytest.raises(OctaveError, match="expected 'octave' or 'matlab'"):
        OctaveResource(backend="julia").call("version")


@needs_octave
def test_octave_error_carries_the_message_and_output():
    octave = OctaveResource()
    try:
        assert octave.call("plus", 2, 3, nout=1) == 5
        with pytest.raises(OctaveError, match="region 12 is out of range"):
            octave.call("error", "region %d is out of range", 12)
        assert octave.call("exist", "downsample", nout=1) == 2  # the signal package was loaded once
    finally:
        octave.close()


@needs_octave
def test_timeout_kills_the_session():
    octave = OctaveResource(timeout_s=1.0)
    octave.call("version", nout=1)
    pid = octave.engine_pid()
    assert pid is not None
    with pytest.raises(OctaveError, match="exceeded the 1 s timeout"):
        octave.call("pause", 30)
    assert octave.engine_pid() is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the Octave process is gone, not left running


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first); OSError if no such process."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _minor_faults(pid: int) -> int:
    return int(_stat_fields(pid)[7])


def _faults_of_a_second_large_array(octave: OctaveResource) -> int:
    """Minor page faults of Octave while it fills and frees a 400-MB array for the second time."""
    octave.call("eval", "x = ones(5e7, 1); clear x")
    before = _minor_faults(octave.engine_pid())
    octave.call("eval", "x = ones(5e7, 1); clear x")
    return _minor_faults(octave.engine_pid()) - before


def _huge_pages_always() -> bool:
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return thp.exists() and "[always]" in thp.read_text()


@needs_octave
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.skipif("GLIBC_TUNABLES" in os.environ, reason="the environment sets its own glibc tunables")
@pytest.mark.skipif(_huge_pages_always(), reason="transparent huge pages: a fault maps 2 MB, the count says little")
def test_large_arrays_reuse_freed_memory_instead_of_faulting_in_fresh_pages():
    pages = 5e7 * 8 / 4096
    kept, returned = OctaveResource(), OctaveResource(keep_freed_memory=False)
    try:
        # the default: the second array lands in the memory the first one left (only the call's own small faults)
        assert _faults_of_a_second_large_array(kept) < 0.05 * pages
        # glibc's default: freed at once, so the second array faults in every page again
        assert _faults_of_a_second_large_array(returned) > 0.9 * pages
    finally:
        kept.close()
        returned.close()
    assert "GLIBC_TUNABLES" not in os.environ  # set for the Octave process only


_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


@needs_octave
@pytest.mark.skipif(any(v in os.environ for v in _BLAS_VARIABLES), reason="the environment sets BLAS threads")
def test_the_session_uses_one_blas_thread_unless_told_otherwise():
    one, library_default = OctaveResource(), OctaveResource(blas_threads=0)
    try:
        assert [one.call("getenv", v, nout=1) for v in _BLAS_VARIABLES] == ["1", "1"]
        assert [library_default.call("getenv", v, nout=1) for v in _BLAS_VARIABLES] == ["", ""]
    finally:
        one.close()
        library_default.close()
    assert not any(v in os.environ for v in _BLAS_VARIABLES)  # set for the Octave process only
    with pytest.raises(OctaveError, match="blas_threads is -1; expected ≥ 0"):
        OctaveResource(blas_threads=-1).check()


def test_matlab_literals():
    assert (
        matlab_literal({"a": [1, 2.5], "b": True, "c": "it's"})
        == "struct('a', {[1 2.5]}, 'b', {true}, 'c', {'it''s'})"
    )
    assert matlab_literal(["x", 1]) == "{'x', 1}"
    with pytest.raises(TypeError, match="cannot pass"):
        matlab_literal(object())


_HOLD_A_SESSION = """
import sys, time
from resources.octave import OctaveResource
octave = OctaveResource()
octave.call("version", nout=1)
print(octave._temp_dir, octave.engine_pid(), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a dead child waiting to be reaped)."""
    try:
        state = _stat_fields(pid)[0]
    except OSError:
        return False
    return state != "Z"


@needs_octave
def test_a_killed_session_leaves_nothing_in_the_working_folder_and_its_temp_dir_is_removed_next_time(
    tmp_path, monkeypatch
):
    temp_root, cwd = tmp_path / "tmp", tmp_path / "cwd"
    temp_root.mkdir()
    cwd.mkdir()
    env = {**os.environ, "TMPDIR": str(temp_root), "PYTHONPATH": str(PROJECT_ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_SESSION], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True
    )
    assert select.select([holder.stdout], [], [], 120)[0], "the session holder did not start Octave"
    folder, engine_pid = holder.stdout.readline().split()
    orphan = Path(folder)
    holder.kill()  # kill -9 of the Python process; its Octave child exits when its pipe closes
    holder.wait()
    deadline = time.monotonic() + 60
    while _alive(int(engine_pid)):  # Octave may still write into the orphan folder while it exits
        assert time.monotonic() < deadline, "Octave outlived its killed parent by a minute"
        time.sleep(0.1)
    assert orphan.parent == temp_root and orphan.name.startswith(f"neuro-octave-{holder.pid}-"), orphan
    assert orphan.is_dir()
    unrelated = temp_root / "neuro-octave-notes"  # not ours: no pid in its name
    unrelated.mkdir()

    monkeypatch.setenv("TMPDIR", str(temp_root))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.chdir(cwd)
    octave = OctaveResource()
    try:
        assert octave.call("plus", 1, 1, nout=1) == 2
        assert not orphan.exists() and unrelated.is_dir()
        live = Path(octave._temp_dir)
        assert live.is_dir()
    finally:
        octave.close()
    assert not live.exists()
    assert list(cwd.iterdir()) == []  # no octave-workspace where the command was started
