"""Unit of work: one session, one transaction, and the jobs to publish once it commits."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from packages.infra.queue.outbox import JobOutbox, TaskSender


class UnitOfWork:
    def __init__(self, factory: async_sessionmaker[AsyncSession], sender: TaskSender) -> None:
        self._factory = factory
        self._sender = sender
        self._session: AsyncSession | None = None
        self.outbox = JobOutbox(sender)

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    def enqueue(self, task_name: str, *args: Any, task_id: str | None = None, **kwargs: Any) -> None:
        self.outbox.add(task_name, *args, task_id=task_id, **kwargs)

    async def commit_now(self) -> None:
        """Persist the work so far even though an error is about to be raised (e.g. a revocation)."""
        await self.session.commit()

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._factory()
        await self._session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self.session, None
        try:
            if exc_type is None:
                await session.commit()
            else:
                await session.rollback()
                self.outbox.discard()
        finally:
            await session.close()
        if exc_type is None:
            await self.outbox.flush()
