"""Small helpers shared by the embedded PostgreSQL and Redis servers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import os
import socket
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, Literal

EmbeddedMode = Literal["auto", "always", "never"]
EMBEDDED_MODES: tuple[EmbeddedMode, ...] = ("auto", "always", "never")


class EmbeddedServiceError(RuntimeError):
    """A server could not be found, started, stopped or used; the message says what to do."""


def tcp_port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR matches what the servers do, so a port in TIME_WAIT still counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def find_free_port(preferred: int, host: str = "127.0.0.1", attempts: int = 50) -> int:
    """The preferred port if it is free, else the next free one above it, else any free port."""
    for candidate in range(preferred, min(preferred + attempts, 65536)):
        if port_is_free(candidate, host):
            return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    """True while the process exists and has not exited (a zombie awaiting its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/<pid>/stat is "pid (comm) state ..."; comm may contain spaces, so split after ")".
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


@contextlib.contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Serialise start/stop of one server across processes (a CLI and a test run may race)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_blocking[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even when this thread already runs a loop.

    The resolution helpers are synchronous so that the CLI and plain pytest fixtures can call them;
    inside an async caller the coroutine runs on a short-lived helper thread with its own loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])
