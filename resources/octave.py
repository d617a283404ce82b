"""Run the project's ``matlab/`` functions in GNU Octave (through oct2py) or in MATLAB (``matlab -batch``).

One engine session per step process: it starts lazily on the first call, loads the ``signal`` package once, uses
its own temporary folder, honours a timeout, and is always shut down (killed if it does not exit) at teardown.
Arguments cross the boundary as small values (paths, numbers, strings, flat structs); the ``.m`` functions read
and write their large data as MAT files themselves.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from neuro_core.project import PROJECT_ROOT

MATLAB_CODE_DIR = PROJECT_ROOT / "matlab"
TEMP_DIR_PREFIX = "neuro-octave-"
# Octave 7.3 prints this on every exit, successful or not; it is never a sign of failure.
_OCTAVE_EXIT_NOISE = "ignoring const execution_exception& while preparing to exit"
_OUTPUT_TAIL_LINES = 60
# glibc gives every freed block above 32 MB straight back to the kernel, so each iteration Octave loads (400 MB in the
# original configuration) lands in fresh pages: a page fault and a zeroed page per 4 KB, and on a VM that returns
# freed memory to its host (virtio-balloon free page reporting) a host fault too, ≈ 2.6 ms per MB. Without mmap and
# trimming, freed memory stays in Octave's heap for the next load (same outputs;
# benchmarks/deepsif_extraction_benchmark.py, region 7: 4.6 → 3.6 s, 4.8 → 3.9 CPU-s).
OCTAVE_MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776"


class OctaveError(RuntimeError):
    """An Octave/MATLAB engine problem: missing executable or package, an ``error()`` in our code, a timeout."""

    def __init__(self, message: str, output: str = ""):
        self.output = output
        super().__init__(f"{message}\n--- engine output (last lines) ---\n{output}" if output else message)


def _tail(lines: Sequence[str]) -> str:
    kept = [line for line in lines if _OCTAVE_EXIT_NOISE not in line]
    return "\n".join(kept[-_OUTPUT_TAIL_LINES:])


def matlab_literal(value: Any) -> str:
    """Render a Python value as a MATLAB/Octave expression (for ``matlab -batch``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str | os.PathLike):
        return "'" + str(value).replace("'", "''") + "'"
    if isinstance(value, Mapping):
        # struct('a', {v}) wraps values in cells so that cell-valued fields do not build struct arrays.
        parts = [f"{matlab_literal(str(k))}, {{{matlab_literal(v)}}}" for k, v in value.items()]
        return "struct(" + ", ".join(parts) + ")"
    if isinstance(value, Sequence):
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return "[" + " ".join(matlab_literal(v) for v in value) + "]"
        return "{" + ", ".join(matlab_literal(v) for v in value) + "}"
    raise TypeError(
        f"cannot pass {type(value).__name__} {value!r} to MATLAB; pass a path, number, string or dict"
    )


@contextlib.contextmanager
def _stderr_into(path: Path) -> Iterator[Path]:
    """Send this process' stderr (file descriptor 2, which child processes inherit) to ``path`` meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as target:
        os.dup2(target.fileno(), 2)
        try:
            yield path
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _environment_default(values: Mapping[str, str]) -> Iterator[None]:
    """Set the variables not already set in this process's environment meanwhile (for the child processes started
    inside), then remove them again."""
    added = {name: value for name, value in values.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def remove_orphan_temp_dirs() -> list[Path]:
    """Delete the temp folders of engine sessions whose process was killed (named ``neuro-octave-<pid>-…``)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_DIR_PREFIX}*"):
        pid = folder.name[len(TEMP_DIR_PREFIX) :].split("-")[0]
        if folder.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class OctaveResource(dg.ConfigurableResource):
    """The Octave/MATLAB engine that runs ``matlab/*.m`` (spike-clip extraction, synthetic sources)."""

    backend: str = Field(
        default="octave", description="'octave' (GNU Octave via oct2py) or 'matlab' (matlab -batch)"
    )
    executable: str = Field(default="", description="Engine binary; default octave-cli or matlab on PATH")
    timeout_s: float = Field(default=3600.0, description="Per-call timeout in seconds")
    code_dir: str = Field(default=str(MATLAB_CODE_DIR), description="Folder with the project's .m files")
    load_signal: bool = Field(default=True, description="Octave only: `pkg load signal` once per session")
    keep_freed_memory: bool = Field(
        default=True,
        description="Octave only: freed memory stays in the session for reuse (glibc tunables; the session then "
        "holds its peak memory until it ends) instead of fresh, page-faulted memory for every large array. "
        "A GLIBC_TUNABLES already in the environment is left as it is.",
    )
    blas_threads: int = Field(
        default=1,
        description="Threads of the engine's linear algebra; 0 = the library's default, one per core. The pipeline "
        "runs one step per core, so more threads only cost CPU time (0.2-0.3 CPU-s per region's extraction). "
        "Octave: OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (values already in the environment are left as they "
        "are); MATLAB: 1 adds -singleCompThread. Matrix products may differ in the last bits with the count.",
    )

    _session: Any = PrivateAttr(default=None)
    _temp_dir: str | None = PrivateAttr(default=None)
    _output: list[str] = PrivateAttr(default_factory=list)

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        """Stop the engine session (kill it if it does not exit) and remove its temporary folder."""
        session, self._session = self._session, None
        if session is not None:
            child = getattr(getattr(getattr(session, "_engine", None), "repl", None), "child", None)
            with contextlib.suppress(Exception):
                session.exit()
            if child is not None and child.isalive():
                with contextlib.suppress(Exception):
                    child.kill(signal.SIGKILL)
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def check(self) -> None:
        """Fail with one clear :class:`OctaveError` unless the engine (and Octave's ``signal``) is usable.

        Used before anything is launched; costs one short engine start (≈ 0.5 s for Octave).
        """
        executable = self._resolved_executable()
        if self.backend != "octave" or not self.load_signal:
            return
        probe = subprocess.run(
            [executable, "--no-gui", "--no-window-system", "--quiet", "--eval", "pkg load signal"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tempfile.gettempdir(),
        )
        if probe.returncode != 0:
            raise OctaveError(
                "GNU Octave's 'signal' package is missing or broken: install it "
                "(Debian: apt-get install --no-install-recommends octave-signal)",
                _tail(probe.stderr.splitlines()),
            )

    def _resolved_executable(self) -> str:
        if self.backend not in ("octave", "matlab"):
            raise OctaveError(f"OctaveResource.backend is {self.backend!r}; expected 'octave' or 'matlab'")
        if self.blas_threads < 0:
            raise OctaveError(f"OctaveResource.blas_threads is {self.blas_threads}; expected ≥ 0 (0: one per core)")
        name = self.executable or ("octave-cli" if self.backend == "octave" else "matlab")
        path = shutil.which(name)
        if path is None:
            hint = (
                "install GNU Octave (Debian: apt-get install --no-install-recommends octave octave-signal), "
                "or set the resource's `executable`"
                if self.backend == "octave"
                else "put MATLAB on PATH or set the resource's `executable`"
            )
            raise OctaveError(f"{self.backend} executable {name!r} not found on PATH: {hint}")
        return path

    def _octave_session(self) -> Any:
        if self._session is not None:
            return self._session
        executable = self._resolved_executable()
        os.environ["OCTAVE_EXECUTABLE"] = executable
        remove_orphan_temp_dirs()
        self._temp_dir = tempfile.mkdtemp(prefix=f"{TEMP_DIR_PREFIX}{os.getpid()}-")
        # oct2py probes the executable (and, at import, starts a default session we close at once); Octave 7
        # prints exit noise on stderr each time. Keep it out of the logs unless starting fails.
        tunables = {"GLIBC_TUNABLES": OCTAVE_MALLOC_TUNABLES} if self.keep_freed_memory else {}
        if self.blas_threads:
            tunables |= dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"), str(self.blas_threads))
        with _stderr_into(Path(self._temp_dir) / "startup.log") as startup_log, _environment_default(tunables):
            try:
                import oct2py

                with contextlib.suppress(Exception):
                    # Exiting makes Octave write octave-workspace into its working folder: make that ours.
                    oct2py.octave.eval(f"cd({matlab_literal(self._temp_dir)})")
                    oct2py.octave.exit()
                session = oct2py.Oct2Py(executable=executable, temp_dir=self._temp_dir, timeout=self.timeout_s)
            except Exception as exc:
                raise OctaveError(
                    f"could not start Octave ({executable}): {exc}", _tail(startup_log.read_text().splitlines())
                ) from exc
        self._session = session
        # Octave writes octave-workspace into its working folder when it is killed: keep that in the temp dir.
        session.eval(f"cd({matlab_literal(self._temp_dir)})")
        session.addpath(str(Path(self.code_dir).absolute()))
        if self.load_signal:
            try:
                session.eval("pkg load signal", stream_handler=self._output.append)
            except Exception as exc:
                self.close()
                raise OctaveError(
                    "GNU Octave's 'signal' package is missing or broken: install it "
                    "(Debian: apt-get install --no-install-recommends octave-signal)",
                    _tail([*self._output, str(exc)]),
                ) from exc
        return session

    def engine_pid(self) -> int | None:
        """Process id of the live Octave session (None for the matlab backend or before the first call)."""
        child = getattr(getattr(getattr(self._session, "_engine", None), "repl", None), "child", None)
        return getattr(child, "pid", None)

    def last_output(self) -> list[str]:
        """What the engine printed during the last call (Octave exit noise removed)."""
        return [line for line in self._output if _OCTAVE_EXIT_NOISE not in line]

    # ---- calls -----------------------------------------------------------------------------------------------
    def call(self, function: str, *args: Any, nout: int = 0) -> Any:
        """Call ``function(*args)`` from ``code_dir``; return its outputs (Octave) or None (MATLAB, ``nout=0``)."""
        if not function.isidentifier():
            raise OctaveError(f"not a MATLAB function name: {function!r}")
        if self.backend == "matlab":
            if nout:
                raise OctaveError("the matlab backend returns no values: write results to files (nout=0)")
            self._run_matlab(function, args)
            return None
        session = self._octave_session()
        self._output.clear()
        try:
            return session.feval(
                function, *args, nout=nout, stream_handler=self._output.append, timeout=self.timeout_s
            )
        except Exception as exc:
            text = str(exc)
            if "Timed out" in text:
                # An interrupted session may be in any state: never reuse it.
                self.close()
                raise OctaveError(
                    f"Octave call {function}(…) exceeded the {self.timeout_s:g} s timeout",
                    _tail(self._output),
                ) from exc
            raise OctaveError(f"Octave call {function}(…) failed: {text}", _tail(self._output)) from exc

    def matlab_command(self, function: str, args: Sequence[Any]) -> list[str]:
        """The exact ``matlab -batch`` command line for ``function(*args)`` (exposed for tests and logs)."""
        call = f"{function}({', '.join(matlab_literal(a) for a in args)})"
        code_dir = matlab_literal(str(Path(self.code_dir).absolute()))
        threads = ["-singleCompThread"] if self.blas_threads == 1 else []
        return [self._resolved_executable(), *threads, "-batch", f"addpath({code_dir}); {call}"]

    def _run_matlab(self, function: str, args: Sequence[Any]) -> None:
        command = self.matlab_command(function, args)
        with tempfile.TemporaryDirectory(prefix=f"{TEMP_DIR_PREFIX}{os.getpid()}-") as workdir, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=workdir
        ) as proc:
            try:
                output, _ = proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
                raise OctaveError(
                    f"MATLAB call exceeded the {self.timeout_s:g} s timeout: {shlex.join(command)}",
                    _tail(output.splitlines()),
                ) from None
        self._output = output.splitlines()
        if proc.returncode != 0:
            raise OctaveError(
                f"MATLAB call failed with exit status {proc.returncode}: {shlex.join(command)}",
                _tail(output.splitlines()),
            )
