"""compose.dev.yml: the seed's seven services, health checks, start order, ports, one backend image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose.dev.yml"
SERVICES = {"postgres", "redis", "mcp", "api", "worker-cpu", "worker-io", "beat"}
BACKEND = {"mcp": "mcp", "api": "api", "worker-cpu": "worker_cpu", "worker-io": "worker_io", "beat": "beat"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def _conditions(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def test_exactly_the_seed_services_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_start_order_is_gated_on_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert _conditions(services["mcp"]) == {"postgres": "service_healthy", "redis": "service_healthy"}
    assert _conditions(services["api"]) == {"mcp": "service_healthy"}
    for name in ("worker-cpu", "worker-io", "beat"):
        assert _conditions(services[name]) == {"api": "service_healthy"}
    assert not _conditions(services["postgres"]) and not _conditions(services["redis"])


def test_host_ports_and_overrides(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["ports"] == ["${POSTGRES_HOST_PORT:-5432}:5432"]
    assert services["redis"]["ports"] == ["${REDIS_HOST_PORT:-6379}:6379"]
    assert services["api"]["ports"] == ["8000:8000"]
    assert services["mcp"]["ports"] == ["8110:8110"]


def test_backend_services_share_one_image_and_name_their_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, minsy_service in BACKEND.items():
        service = services[name]
        assert service["image"] == "minsy-backend:dev"
        assert service["environment"]["MINSY_SERVICE"] == minsy_service
        assert service["environment"]["POSTGRES_HOST"] == "postgres"
        assert service["environment"]["REDIS_HOST"] == "redis"
        assert service["environment"]["MINSY_EMBEDDED_SERVICES"] == "never"
        assert service["env_file"] == [{"path": "env/.env.secrets", "required": False}]
    assert "minsy migrate" in " ".join(services["mcp"]["command"])
    assert "backtest,stress" in services["worker-cpu"]["command"]
    assert "market_data,paper_trading,notifications,maintenance" in services["worker-io"]["command"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "apps.beat.main", "beat"]


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_accepts_the_file() -> None:
    command = _compose_cli()
    if command is None:
        pytest.skip(
            "no Docker Compose CLI on this machine (`docker compose version` fails, no docker-compose)"
        )

    def config(**overrides: str) -> dict[str, Any]:
        env = {key: value for key, value in os.environ.items() if not key.endswith("_HOST_PORT")}
        result = subprocess.run(
            [*command, "-f", str(COMPOSE_FILE), "config", "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
            env={**env, **overrides},
        )
        assert result.returncode == 0, result.stderr
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed

    def published(document: dict[str, Any], service: str) -> str:
        return str(document["services"][service]["ports"][0]["published"])

    defaults = config()
    assert set(defaults["services"]) == SERVICES
    assert (published(defaults, "postgres"), published(defaults, "redis")) == ("5432", "6379")
    moved = config(POSTGRES_HOST_PORT="5433", REDIS_HOST_PORT="6380")
    assert (published(moved, "postgres"), published(moved, "redis")) == ("5433", "6380")
