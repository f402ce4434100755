"""Real services for tests: PostgreSQL and Redis (reachable ones, else embedded), a freshly
migrated database, and on demand the MCP server and Celery workers as real subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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
        "--loglevel",
        "INFO",
    ]
