"""Start and stop a real loopback Redis server and real ``dagster-celery`` workers for tests.

Every process is started in its own session (process group) and killed as a group on exit, so nothing is left
behind even when a worker has forked pool children or Octave sessions. All waits are bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from neuro_core.project import PROJECT_ROOT

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
VENV_BIN = Path(sys.executable).parent
START_WORKER_SCRIPT = PROJECT_ROOT / "deploy" / "celery" / "start_worker.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process's group, then SIGKILL it if anything is still alive after ``grace_s``; reap."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    # The leader may be gone while pool children or Octave still run in its group: always finish with SIGKILL.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def redis_ping(port: int, timeout: float = 1.0) -> bool:
    """True if a Redis server answers PING on the loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throw-away ``redis-server`` on a fixed loopback port that can be stopped and started again (same port,
    same data folder), e.g. to restart the broker under running Celery workers."""

    def __init__(self, work_dir: Path, persistent: bool = False, timeout_s: float = 20.0) -> None:
        if not Path(REDIS_SERVER).exists():
            raise FileNotFoundError(f"redis-server not found at {REDIS_SERVER} (Debian package `redis-server`)")
        self.work_dir, self.persistent, self.timeout_s = work_dir, persistent, timeout_s
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        work_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "redis.log"

    def start(self) -> None:
        # persistent: an append-only file synced on every write, as a production broker keeps queued tasks
        # across a restart; otherwise no persistence at all (a restart loses every message).
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else [
            "--appendonly", "no"
        ]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
                 "--dir", str(self.work_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + self.timeout_s
        while not redis_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (Redis writes its append-only file and exits), SIGKILL after a grace period."""
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


@contextlib.contextmanager
def redis_server(work_dir: Path, persistent: bool = False, timeout_s: float = 20.0) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, always stopped on exit."""
    server = RedisServer(work_dir, persistent, timeout_s)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_redis(work_dir: Path, timeout_s: float = 20.0) -> Iterator[str]:
    """A throw-away ``redis-server`` on a free loopback port, without persistence; yields its URL."""
    with redis_server(work_dir, timeout_s=timeout_s) as server:
        yield server.url


@dataclass
class CeleryWorker:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def hostname(self) -> str:
        # `dagster-celery worker start -n NAME` names the Celery node NAME@<host>.
        return f"{self.name}@{socket.gethostname()}"


def worker_env(dagster_home: Path, broker_url: str) -> dict[str, str]:
    """Environment of a worker: the shared instance, the broker, and this venv's ``celery`` on PATH."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_CELERY_BROKER_URL": broker_url,
        "DAGSTER_CELERY_BACKEND_URL": broker_url,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }


def ping_workers(broker_url: str, hostnames: Sequence[str], timeout_s: float = 2.0) -> set[str]:
    """The subset of ``hostnames`` that answered a Celery control ping through the broker."""
    from celery import Celery

    app = Celery("ping", broker=broker_url, backend=broker_url)
    try:
        replies = app.control.ping(destination=list(hostnames), timeout=timeout_s) or []
    finally:
        app.close()
    return {name for reply in replies for name in reply}


def start_celery_worker(
    name: str,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path = PROJECT_ROOT,
    slots: int = 1,
    start_script: Path = START_WORKER_SCRIPT,
) -> CeleryWorker:
    """``start_script NAME SLOTS`` in its own process group (stop it with :func:`stop_process_group`)."""
    with open(log_path, "a") as log:
        # The deployment's own start script (env + `dagster-celery worker start -y deploy/celery/celery.yaml`).
        process = subprocess.Popen(
            ["bash", str(start_script), name, str(slots)],
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return CeleryWorker(name=name, process=process, log_path=log_path)


def wait_until_answering(broker_url: str, workers: Sequence[CeleryWorker], timeout_s: float = 90.0) -> None:
    """Return once every worker answers a ping through the broker; raise with the logs' tails otherwise."""
    expected = {worker.hostname for worker in workers}
    deadline = time.monotonic() + timeout_s
    answered: set[str] = set()
    error: Exception | None = None
    while answered != expected:
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited early:\n{worker.log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {w.name}\n{w.log_path.read_text()[-1500:]}" for w in workers)
            raise RuntimeError(
                f"workers not ready after {timeout_s}s (answered {answered}, last error {error!r}):\n{tails}"
            )
        try:
            answered = ping_workers(broker_url, sorted(expected))
        except Exception as exc:  # a dropped broker connection while polling is no verdict: ask again
            error = exc
            time.sleep(0.5)


@contextlib.contextmanager
def running_celery_workers(
    names: Sequence[str],
    dagster_home: Path,
    broker_url: str,
    log_dir: Path,
    start_script: Path = START_WORKER_SCRIPT,
    ready_timeout_s: float = 90.0,
) -> Iterator[list[CeleryWorker]]:
    """``start_script NAME 1`` once per name (one slot each); yields when all answer a ping through the broker."""
    import dagster as dg

    # Create the instance's SQLite storage once, before the workers race to create the same tables.
    with dg.DagsterInstance.from_config(str(dagster_home)):
        pass
    env = worker_env(dagster_home, broker_url)
    workers: list[CeleryWorker] = []
    try:
        for name in names:
            workers.append(
                start_celery_worker(name, env, log_dir / f"worker-{name}.log", start_script=start_script)
            )
        wait_until_answering(broker_url, workers, ready_timeout_s)
        yield workers
    finally:
        for worker in workers:
            stop_process_group(worker.process)


@contextlib.contextmanager
def running_service(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path
) -> Iterator[subprocess.Popen]:
    """A long-running process (daemon, webserver) in its own process group, stopped with its children on exit."""
    with open(log_path, "a") as log:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        # Run processes launched by the daemon are its grandchildren, in the same group: stopped with it.
        stop_process_group(process, grace_s=20)
