"""A throw-away PostgreSQL server for tests: Debian's binaries, a fresh cluster in a temp folder, loopback only.

PostgreSQL refuses to run as root, and the tests run as root in CI, so the cluster belongs to an unprivileged
system user (``postgres`` from Debian's package, else ``nobody``) and every server command runs under
``setpriv`` as that user. The folder lives directly under the system temp folder (pytest's own temp folders are
private to root, the server could not enter them). Clients connect over TCP to 127.0.0.1 with a password
(``scram-sha-256``), exactly like a remote Dagster instance would; nothing listens on other addresses.

:func:`running_postgres` yields the ``DAGSTER_PG_*`` variables that ``deploy/celery/dagster.yaml`` reads and
always stops the server and deletes the cluster, also when the test fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.celery_harness import free_port

DB_NAME = "dagster"
DB_USER = "dagster"
_SERVER_USERS = ("postgres", "nobody")


def postgres_bin_dir() -> Path | None:
    """Folder of ``initdb``/``pg_ctl``: Debian's newest ``/usr/lib/postgresql/<ver>/bin``, else from PATH."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as (None: run as ourselves, we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in _SERVER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"no unprivileged account to run PostgreSQL as (tried {', '.join(_SERVER_USERS)})")


def _as_user(user: pwd.struct_passwd | None, command: list[str]) -> list[str]:
    if user is None:
        return command
    # setpriv execs the command (no extra process, no PAM session), so signals reach the server itself.
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *command]


def _run(command: list[str], log: Path, timeout_s: float, env: dict[str, str] | None = None) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        completed = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, env=env, cwd="/",
            start_new_session=True,
        )
    if completed.returncode != 0:
        raise RuntimeError(f"{command[0]} … failed (status {completed.returncode}):\n{log.read_text()[-3000:]}")


def _postmaster_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


@contextlib.contextmanager
def running_postgres(timeout_s: float = 60.0) -> Iterator[dict[str, str]]:
    """A new cluster with database ``dagster`` on a free loopback port; yields the ``DAGSTER_PG_*`` variables."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL binaries not found (Debian package `postgresql`, scripts/setup.sh)")
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="neuro-pg-"))
    data_dir, log = root / "data", root / "server.log"
    password = secrets.token_hex(16)
    port = free_port()
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(port),
        "DAGSTER_PG_USERNAME": DB_USER,
        "DAGSTER_PG_PASSWORD": password,
        "DAGSTER_PG_DB": DB_NAME,
    }
    server_started = False
    try:
        (root / "pwfile").write_text(password + "\n")
        if user is not None:
            for path in (root, root / "pwfile"):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        _run(
            _as_user(user, [
                str(bin_dir / "initdb"), "-D", str(data_dir), "-U", DB_USER, f"--pwfile={root / 'pwfile'}",
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--no-sync",
            ]),
            root / "initdb.log",
            timeout_s,
        )
        # Loopback TCP only; the Unix socket stays inside the cluster folder; fsync off: a test database.
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c max_connections=200"
        server_started = True
        _run(
            _as_user(user, [
                str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options,
                "-w", "-t", str(int(timeout_s)), "start",
            ]),
            root / "pg_ctl.log",
            timeout_s + 10,
        )
        _run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, DB_NAME],
            root / "createdb.log",
            timeout_s,
            env={**os.environ, "PGPASSWORD": password},
        )
        yield env
    finally:
        if server_started:
            _stop(bin_dir, user, data_dir, root)
        shutil.rmtree(root, ignore_errors=True)


def _stop(bin_dir: Path, user: pwd.struct_passwd | None, data_dir: Path, root: Path) -> None:
    """Fast shutdown (disconnects clients); SIGKILL whatever is left so no server outlives the test."""
    pid = _postmaster_pid(data_dir)
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        _run(
            _as_user(user, [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "-t", "30", "stop"]),
            root / "pg_ctl.log",
            40,
        )
    if pid is not None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
