"""Choosing between the configured server and an embedded one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from packages.infra.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServiceError,
    ResolvedService,
    resolve_postgres,
    resolve_redis,
)
from packages.infra.embedded._common import find_free_port


@pytest.fixture(scope="module")
def configured_postgres(module_scratch_dir: Path) -> Iterator[EmbeddedPostgres]:
    """Stands in for an external server: one that is running before resolution starts."""
    server = EmbeddedPostgres(module_scratch_dir / "external-postgres", preferred_port=find_free_port(57632))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def configured_redis(module_scratch_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(module_scratch_dir / "external-redis", preferred_port=find_free_port(57579))
    server.start()
    yield server
    server.stop()


def test_postgres_resolution_prefers_a_reachable_server_and_falls_back_to_embedded(
    configured_postgres: EmbeddedPostgres, scratch_dir: Path
) -> None:
    configured_url = configured_postgres.url("minsy_app")
    chosen = resolve_postgres(configured_url, data_dir=scratch_dir, mode="auto")
    assert (chosen.url, chosen.embedded, chosen.handle) == (configured_url, False, None)
    assert chosen.release() is False  # never stops a server it did not start

    closed_url = f"postgresql+asyncpg://postgres@127.0.0.1:{find_free_port(58632)}/minsy_app"
    with pytest.raises(EmbeddedServiceError, match="MINSY_EMBEDDED_SERVICES=never"):
        resolve_postgres(closed_url, data_dir=scratch_dir, mode="never")
    assert not (scratch_dir / "postgres").exists()

    embedded = resolve_postgres(closed_url, data_dir=scratch_dir, mode="auto")
    try:
        assert embedded.embedded and embedded.started_here
        assert embedded.url.endswith("/minsy_app")  # keeps the configured database name
        assert embedded.url != closed_url and (scratch_dir / "postgres" / "data" / "PG_VERSION").is_file()
        # mode=always ignores the reachable configured server; the running embedded one is reused.
        forced = resolve_postgres(configured_url, data_dir=scratch_dir, mode="always")
        assert forced.embedded and not forced.started_here and forced.url == embedded.url
        assert forced.release() is False
    finally:
        assert embedded.release() is True


def test_redis_resolution_prefers_a_reachable_server_and_falls_back_to_embedded(
    configured_redis: EmbeddedRedis, scratch_dir: Path
) -> None:
    chosen = resolve_redis(configured_redis.url + "/0", data_dir=scratch_dir)
    assert (chosen.url, chosen.embedded) == (configured_redis.url + "/0", False)

    closed_url = f"redis://127.0.0.1:{find_free_port(58679)}"
    with pytest.raises(EmbeddedServiceError, match="never"):
        resolve_redis(closed_url, data_dir=scratch_dir, mode="never")
    embedded = resolve_redis(closed_url, data_dir=scratch_dir)
    try:
        assert embedded.embedded and embedded.started_here
        assert embedded.url not in (closed_url, configured_redis.url)
        assert (scratch_dir / "redis" / "redis.conf").is_file()
    finally:
        assert embedded.release() is True
        assert embedded.release() is False


def test_invalid_mode_is_rejected_with_the_allowed_values(scratch_dir: Path) -> None:
    with pytest.raises(EmbeddedServiceError, match="auto, always, never"):
        resolve_redis("redis://127.0.0.1:6379", data_dir=scratch_dir, mode="sometimes")


def test_display_url_masks_passwords_only() -> None:
    assert ResolvedService(
        "postgres", "postgresql+asyncpg://app:s3cret@db:5432/minsy", False
    ).display_url == ("postgresql+asyncpg://app:***@db:5432/minsy")
    assert (
        ResolvedService("redis", "redis://:p%40ss@cache:6379", False).display_url == "redis://:***@cache:6379"
    )
    assert ResolvedService("redis", "redis://cache:6379", False).display_url == "redis://cache:6379"
