"""Unit of work: one session, one transaction, and the messages it announces (the outbox)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from packages.core.events.outbox import OutboxRelay, event_message, task_message
from packages.infra.db.models import OutboxMessage


class UnitOfWork:
    def __init__(self, factory: async_sessionmaker[AsyncSession], relay: OutboxRelay) -> None:
        self._factory = factory
        self._relay = relay
        self._session: AsyncSession | None = None
        self._outbox: list[OutboxMessage] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    def enqueue(self, task_name: str, *args: Any, **kwargs: Any) -> None:
        """Send a Celery task once this transaction has committed (stored in the outbox with it)."""
        message = task_message(task_name, args, kwargs)
        self.session.add(message)
        self._outbox.append(message)

    def publish_event(self, channel: str, body: dict[str, Any]) -> None:
        """Publish ``body`` on the Redis pub/sub ``channel`` once this transaction has committed."""
        message = event_message(channel, body)
        self.session.add(message)
        self._outbox.append(message)

    async def commit_now(self) -> None:
        """Persist the work so far even though an error is about to be raised (e.g. a revocation)."""
        await self.session.commit()

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._factory()
        self._outbox = []
        await self._session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self.session, None
        committed, self._outbox = self._outbox, []
        try:
            if exc_type is None:
                await session.commit()
            else:
                await session.rollback()
                committed = []
        finally:
            await session.close()
        if committed:
            await self._relay.publish_committed(committed)
