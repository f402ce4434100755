"""Long-lived clients a process opens once and shares: database, Redis, Celery."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from packages.core.events.outbox import OutboxRelay
from packages.core.uow import UnitOfWork
from packages.infra.db.session import create_engine, create_session_factory
from packages.infra.queue.publisher import BrokerPublisher
from packages.infra.redis_client import create_async_redis
from packages.shared_settings import Settings


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis
    celery: Celery

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
    def outbox_relay(self) -> OutboxRelay:
        return OutboxRelay(self.session_factory, BrokerPublisher(self.celery))

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.outbox_relay)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
