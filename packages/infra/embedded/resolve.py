"""Pick the PostgreSQL / Redis server a process should use: the configured one, or an embedded one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

from packages.infra.embedded._common import EMBEDDED_MODES, EmbeddedMode, EmbeddedServiceError
from packages.infra.embedded.postgres_server import (
    DEFAULT_EMBEDDED_POSTGRES_PORT,
    EmbeddedPostgres,
    postgres_reachable,
)
from packages.infra.embedded.redis_server import DEFAULT_EMBEDDED_REDIS_PORT, EmbeddedRedis, redis_reachable


@dataclass
class ResolvedService:
    """The server to use. ``url`` is ready for the app (SQLAlchemy async URL, or Redis base URL)."""

    kind: Literal["postgres", "redis"]
    url: str
    embedded: bool
    handle: EmbeddedPostgres | EmbeddedRedis | None = None

    @property
    def started_here(self) -> bool:
        """True when this process started the embedded server (and so should stop it)."""
        return self.handle is not None and self.handle.started_here

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for logs and banners."""
        parts = urlsplit(self.url)
        if not parts.password:
            return self.url
        user = parts.username or ""
        masked = parts.netloc.replace(f"{user}:{parts.password}@", f"{user}:***@", 1)
        return urlunsplit(parts._replace(netloc=masked))

    def release(self) -> bool:
        """Stop the embedded server if this process started it; leave everything else running."""
        if self.handle is not None and self.handle.started_here:
            return self.handle.stop()
        return False


def _check_mode(mode: str) -> EmbeddedMode:
    if mode not in EMBEDDED_MODES:
        raise EmbeddedServiceError(
            f"MINSY_EMBEDDED_SERVICES={mode!r} is not valid; allowed values: " + ", ".join(EMBEDDED_MODES)
        )
    return mode


def resolve_postgres(
    database_url: str,
    *,
    data_dir: Path,
    mode: str = "auto",
    preferred_port: int = DEFAULT_EMBEDDED_POSTGRES_PORT,
    connect_timeout: float = 3.0,
) -> ResolvedService:
    """The configured PostgreSQL if it answers ``SELECT 1`` (unless mode is ``always``), else an
    embedded server under ``data_dir/postgres`` (unless mode is ``never``), started or reused.

    The returned URL keeps the configured database name; call ``ensure_database(url)`` to create it.
    """
    checked_mode = _check_mode(mode)
    if checked_mode != "always" and postgres_reachable(database_url, connect_timeout=connect_timeout):
        return ResolvedService(kind="postgres", url=database_url, embedded=False)
    if checked_mode == "never":
        parsed = make_url(database_url)
        raise EmbeddedServiceError(
            f"PostgreSQL at {parsed.host}:{parsed.port or 5432} is not reachable and "
            "MINSY_EMBEDDED_SERVICES=never forbids starting an embedded server."
        )
    server = EmbeddedPostgres(data_dir / "postgres", preferred_port=preferred_port)
    server.start()
    database = make_url(database_url).database or "minsy"
    return ResolvedService(kind="postgres", url=server.url(database), embedded=True, handle=server)


def resolve_redis(
    redis_url: str,
    *,
    data_dir: Path,
    mode: str = "auto",
    preferred_port: int = DEFAULT_EMBEDDED_REDIS_PORT,
    connect_timeout: float = 2.0,
) -> ResolvedService:
    """The configured Redis if it answers PING (unless mode is ``always``), else an embedded server
    under ``data_dir/redis`` (unless mode is ``never``), started or reused.

    The configured URL is returned as given; the embedded one is a base URL without a database number.
    """
    checked_mode = _check_mode(mode)
    if checked_mode != "always" and redis_reachable(redis_url, connect_timeout=connect_timeout):
        return ResolvedService(kind="redis", url=redis_url, embedded=False)
    if checked_mode == "never":
        raise EmbeddedServiceError(
            f"Redis at {redis_url.rsplit('@', 1)[-1]} is not reachable and "
            "MINSY_EMBEDDED_SERVICES=never forbids starting an embedded server."
        )
    server = EmbeddedRedis(data_dir / "redis", preferred_port=preferred_port)
    server.start()
    return ResolvedService(kind="redis", url=server.url, embedded=True, handle=server)
