"""Long-lived clients a process opens once and shares: database, Redis, Celery."""

from __future__ import annotations

from dataclasses import dataclass, field

from celery import Celery
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from packages.core.events.outbox import OutboxRelay
from packages.core.uow import UnitOfWork
from packages.infra.db.session import create_engine, create_session_factory
from packages.infra.queue.publisher import BrokerPublisher
from packages.infra.redis_client import create_async_redis, create_sync_redis
from packages.shared_settings import Settings


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis
    celery: Celery
    # Publishes outbox events (blocking redis-py, used from the publisher's worker threads); opened
    # on first use, so processes that never publish an event never connect it.
    _event_redis: SyncRedis | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, pooled: bool = True) -> Resources:
        from packages.infra.queue.celery_app import celery_app

        engine = create_engine(
            settings.database.url,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
            pooled=pooled,
        )
        return cls(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            redis=create_async_redis(settings.redis.app_url),
            celery=celery_app,
        )

    @property
    def event_redis(self) -> SyncRedis:
        if self._event_redis is None:
            self._event_redis = create_sync_redis(self.settings.redis.app_url)
        return self._event_redis

    @property
    def outbox_relay(self) -> OutboxRelay:
        return OutboxRelay(self.session_factory, BrokerPublisher(self.celery, self.event_redis))

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.outbox_relay)

    async def close(self) -> None:
        if self._event_redis is not None:
            self._event_redis.close()
        await self.redis.aclose()
        await self.engine.dispose()
