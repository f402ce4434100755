"""An unexpected exception answers a 500 problem+json with the request id, and the client's
keep-alive connection survives it."""

from __future__ import annotations

import http.client
import json
from typing import Any

from apps.api.main import create_app
from tests.support.live_server import serve


class _Boom(RuntimeError):
    pass


def test_a_500_carries_the_request_id_and_keeps_the_connection(settings: Any) -> None:
    app = create_app(settings)

    @app.get("/api/v1/test-only/boom")
    async def boom() -> None:
        raise _Boom("planted failure")

    with serve(app) as base_url:
        connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
        try:
            connection.request("GET", "/api/v1/test-only/boom", headers={"X-Request-ID": "trace-500"})
            failed = connection.getresponse()
            body = json.loads(failed.read())
            socket_after_error = connection.sock

            connection.request("GET", "/api/v1/health")
            healthy = connection.getresponse()
            healthy.read()
            # http.client opens a new socket only when the server closed the old one.
            same_connection = socket_after_error is not None and connection.sock is socket_after_error
        finally:
            connection.close()

    assert failed.status == 500
    assert failed.getheader("content-type") == "application/problem+json"
    assert failed.getheader("x-request-id") == "trace-500"
    assert failed.getheader("connection") != "close"
    assert body["code"] == "internal_error"
    assert body["request_id"] == "trace-500"
    assert "planted failure" not in json.dumps(body)  # internals stay in the log
    assert healthy.status == 200
    assert same_connection
