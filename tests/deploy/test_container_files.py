"""Dockerfile, .dockerignore and Caddyfile: what the seed asks of them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[str]:
    lines = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_installs_locked_dependencies_before_the_code() -> None:
    instructions = _instructions()
    assert instructions[0] == "FROM python:3.12-slim"
    deps = next(i for i, line in enumerate(instructions) if "--no-install-project" in line)
    assert "uv sync --frozen --no-dev --no-install-project" in instructions[deps]
    assert any(line.startswith("COPY pyproject.toml uv.lock") for line in instructions[:deps])
    code = next(i for i, line in enumerate(instructions) if line.startswith("COPY apps/"))
    assert deps < code
    for folder in ("packages/", "env/", "scripts/"):
        assert any(line.startswith(f"COPY {folder}") for line in instructions[code:])
    assert not any("ta-lib" in line.lower() and ".deb" in line for line in instructions)
    assert instructions[-1] == 'CMD ["uvicorn", "apps.api.main:app", "--host", "0.0.0.0", "--port", "8000"]'


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {"env/.env.secrets", ".venv", "var", ".git"} <= ignored


def _caddy_config() -> dict[str, Any]:
    if shutil.which("caddy") is None:
        pytest.skip("caddy is not installed on this machine")
    result = subprocess.run(
        ["caddy", "adapt", "--config", str(REPO_ROOT / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_caddyfile_routes_hosts_and_paths_to_the_right_ports() -> None:
    config = _caddy_config()
    routes = config["apps"]["http"]["servers"]["srv0"]["routes"]
    by_host = {route["match"][0]["host"][0]: route for route in routes}
    assert set(by_host) == {"api.minsyai.com", "mcp.minsyai.com", "flower.minsyai.com"}

    def proxies(route: dict[str, Any]) -> list[dict[str, Any]]:
        return [node for node in _walk(route) if node.get("handler") == "reverse_proxy"]

    def upstreams(route: dict[str, Any]) -> set[str]:
        return {upstream["dial"] for proxy in proxies(route) for upstream in proxy["upstreams"]}

    assert upstreams(by_host["api.minsyai.com"]) == {"127.0.0.1:8000"}
    assert upstreams(by_host["mcp.minsyai.com"]) == {"127.0.0.1:8110"}
    assert upstreams(by_host["flower.minsyai.com"]) == {"127.0.0.1:5555"}
    # The chat SSE stream is proxied without buffering (flush_interval -1).
    assert any(proxy.get("flush_interval") == -1 for proxy in proxies(by_host["api.minsyai.com"]))
    mcp_paths = {path for node in _walk(by_host["mcp.minsyai.com"]) for path in node.get("path", [])}
    assert mcp_paths == {f"/{domain}/*" for domain in ("strategy", "backtest", "market", "stress", "trading")}
