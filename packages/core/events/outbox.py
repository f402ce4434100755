"""The transactional outbox: what a transaction announces is stored with it, then published.

A unit of work writes each message (a Celery task to send now, or an event for a Redis pub/sub
channel, such as a deployment's live view) as a row of ``outbox_messages`` in its own transaction, so the message exists exactly when the state it
announces does. Publishing is at least once:

- right after the commit, the unit of work publishes its own rows (the fast path: a job starts in
  milliseconds);
- a relay (in the beat process) publishes whatever is still pending: rows whose process died
  between commit and publish, or whose broker was down. A failed send is retried with exponential
  backoff, so a POST that committed while Redis was down runs once Redis is back.

A message may therefore be delivered twice (the fast path sent it but died before marking it, or
a relay ran in between), and events may arrive out of order; every consumer is idempotent (jobs
are claimed from their row, events carry their sequence number).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from packages.infra.db.models import OutboxMessage

log = logging.getLogger("minsy.outbox")


class Publisher(Protocol):
    def publish(self, kind: str, name: str, payload: dict[str, Any]) -> None: ...


def task_message(task_name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(kind="task", name=task_name, payload={"args": list(args), "kwargs": kwargs})


def event_message(channel: str, body: dict[str, Any]) -> OutboxMessage:
    """An event for the Redis pub/sub ``channel``; ``body`` is published as its JSON."""
    return OutboxMessage(kind="event", name=channel, payload=body)


@dataclass(frozen=True)
class RelayPolicy:
    batch: int = 200
    # The fast path normally publishes within milliseconds; the relay leaves it that long.
    grace: timedelta = timedelta(seconds=2)
    first_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(seconds=30)

    def backoff(self, attempts: int) -> timedelta:
        return min(self.first_backoff * (2 ** max(attempts - 1, 0)), self.max_backoff)


class OutboxRelay:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        policy: RelayPolicy | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.publisher = publisher
        self.policy = policy or RelayPolicy()

    async def publish_committed(self, messages: Sequence[OutboxMessage]) -> None:
        """The fast path: publish rows a unit of work has just committed. Never raises; what fails
        is left to the relay."""
        sent: list[int] = []
        for index, message in enumerate(messages):
            try:
                await asyncio.to_thread(self.publisher.publish, message.kind, message.name, message.payload)
            except Exception as exc:
                log.warning(
                    "outbox publish failed; the relay retries it",
                    extra={"outbox_id": message.id, "error": f"{type(exc).__name__}: {exc}"},
                )
                await self._record_failure([m.id for m in messages[index:]], exc)
                break
            sent.append(message.id)
        if sent:
            await self._mark_published(sent)

    async def relay_pending(self) -> int:
        """Publish pending rows (oldest first) until none is due or the broker refuses; returns how
        many were published."""
        published = 0
        while True:
            async with self.session_factory() as session, session.begin():
                due = list(
                    await session.scalars(
                        select(OutboxMessage)
                        .where(
                            OutboxMessage.published_at.is_(None),
                            OutboxMessage.available_at <= func.now(),
                            OutboxMessage.created_at <= func.now() - self.policy.grace,
                        )
                        .order_by(OutboxMessage.id)
                        .limit(self.policy.batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                for message in due:
                    try:
                        await asyncio.to_thread(
                            self.publisher.publish, message.kind, message.name, message.payload
                        )
                    except Exception as exc:
                        message.attempts += 1
                        message.available_at = func.now() + self.policy.backoff(message.attempts)
                        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                        log.warning(
                            "outbox relay could not publish; backing off",
                            extra={"outbox_id": message.id, "attempts": message.attempts},
                        )
                        return published
                    message.published_at = func.now()
                    published += 1
            if len(due) < self.policy.batch:
                return published

    async def purge_published(self, older_than: timedelta) -> int:
        """Delete rows published longer ago than ``older_than``; returns how many."""
        async with self.session_factory() as session, session.begin():
            result = await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.published_at.is_not(None),
                    OutboxMessage.published_at < func.now() - older_than,
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def run_forever(self, stop: threading.Event, *, interval_s: float, keep: timedelta) -> None:
        """The relay loop: publish what is due every ``interval_s`` until ``stop`` is set, and purge
        rows published longer ago than ``keep`` about once an hour."""
        last_purge = 0.0
        while not stop.is_set():
            try:
                await self.relay_pending()
                if time.monotonic() - last_purge > 3600:
                    await self.purge_published(keep)
                    last_purge = time.monotonic()
            except Exception:
                # The database may be briefly away; the next round tries again.
                log.exception("outbox relay round failed")
            await asyncio.to_thread(stop.wait, interval_s)

    async def _mark_published(self, ids: list[int]) -> None:
        async with self.session_factory() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.published_at.is_(None))
                .values(published_at=func.now())
            )

    async def _record_failure(self, ids: list[int], exc: Exception) -> None:
        try:
            async with self.session_factory() as session, session.begin():
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids), OutboxMessage.published_at.is_(None))
                    .values(
                        attempts=OutboxMessage.attempts + 1,
                        available_at=func.now() + self.policy.first_backoff,
                        last_error=f"{type(exc).__name__}: {exc}"[:2000],
                    )
                )
        except Exception:
            # The rows stay pending with their defaults, which the relay also picks up.
            log.exception("could not record an outbox failure")
