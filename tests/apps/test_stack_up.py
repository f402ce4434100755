"""`minsy up` (what `make run` calls) brings the whole stack up on embedded PostgreSQL and Redis,
reports every service healthy, and stops everything on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.stack import REPO_ROOT, free_port


@pytest.mark.slow
def test_minsy_up_on_embedded_servers() -> None:
    # Not pytest's tmp_path: pytest re-locks its temp root to 0700, which would shut out the
    # unprivileged user embedded PostgreSQL runs as when the tests run as root.
    tmp_path = Path(tempfile.mkdtemp(prefix="minsy-stack-up-"))
    tmp_path.chmod(0o755)
    api_port, mcp_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "POSTGRES_", "MCP_", "API_", "MINSY_"))
    }
    env.update(
        MINSY_ENV_PROFILE="dev",
        MINSY_DATA_DIR=str(tmp_path / "data"),
        MINSY_EMBEDDED_SERVICES="always",  # as on a machine where PostgreSQL and Redis are stopped
        API_PORT=str(api_port),
        MCP_PORT=str(mcp_port),
        LOG_JSON="false",
    )
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "apps.cli", "up"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    body: dict = {}
    try:
        while time.monotonic() - started < 120:
            assert launcher.poll() is None, log_path.read_text()[-3000:]
            try:
                body = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/status", timeout=5).json()
                if body.get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert body.get("status") == "ok", (body, log_path.read_text()[-3000:])
        elapsed = time.monotonic() - started
        assert elapsed < 120
        output = log_path.read_text()
        for prefix in ("mcp", "api", "worker-cpu", "worker-io", "beat"):
            assert f"\n{prefix}" in output or output.startswith(prefix), prefix
        assert str(tmp_path / "data" / "postgres") in output  # embedded, in the local data folder
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            code = launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            raise
    assert code == 0, log_path.read_text()[-3000:]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health", timeout=2)
    shutil.rmtree(tmp_path, ignore_errors=True)
