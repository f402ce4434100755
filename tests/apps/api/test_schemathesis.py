"""Property-based requests generated from our own OpenAPI document: nothing answers 500."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.stack import Stack, free_port, wait_until


@pytest.fixture(scope="session")
def api_server(stack: Stack) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = stack.spawn(
        "api",
        ["-m", "uvicorn", "apps.api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        {"MINSY_SERVICE": "api", "API_PORT": str(port)},
    )
    wait_until(
        lambda: httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200,
        timeout=60,
        what="API server",
        process=service.process,
    )
    return url


@pytest.fixture(scope="session")
def api_schema(api_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{api_server}/api/v1/openapi.json")


@pytest.fixture(scope="session")
def auth_headers(api_server: str) -> dict[str, str]:
    response = httpx.post(
        f"{api_server}/api/v1/auth/register",
        json={"email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "password": "fuzzing-password"},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


def test_no_server_errors(api_schema: Any, auth_headers: dict[str, str]) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8

    def exercise_operation(operation: Any) -> None:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            headers = None if "Authorization" in (case.headers or {}) else auth_headers
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{operation.label}: {response.status_code} {response.text[:200]}")

        exercise()

    for operation in operations:
        exercise_operation(operation)
    assert not failures, failures
