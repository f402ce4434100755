"""The transactional outbox: messages exist exactly when their transaction committed, are
published at once, and whatever could not be published is relayed later, with backoff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from packages.core.events.outbox import OutboxRelay, RelayPolicy
from packages.core.uow import UnitOfWork
from packages.infra.db.models import OutboxMessage


class RecordingPublisher:
    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_first = fail_first

    def publish(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ConnectionError("broker down")
        self.sent.append((kind, name, payload))


@pytest.fixture
async def session_factory(api_app: Any) -> Any:
    factory = api_app.state.resources.session_factory
    async with factory() as session, session.begin():
        await session.execute(delete(OutboxMessage))
    return factory


async def _rows(factory: Any) -> list[OutboxMessage]:
    async with factory() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_a_rolled_back_transaction_leaves_no_message(session_factory: Any) -> None:
    publisher = RecordingPublisher()
    relay = OutboxRelay(session_factory, publisher)
    with pytest.raises(RuntimeError):
        async with UnitOfWork(session_factory, relay) as uow:
            uow.enqueue("maintenance.probe", 1)
            raise RuntimeError("roll back")
    assert publisher.sent == []
    assert await _rows(session_factory) == []


async def test_a_committed_message_is_published_after_the_commit(session_factory: Any) -> None:
    publisher = RecordingPublisher()
    relay = OutboxRelay(session_factory, publisher)
    async with UnitOfWork(session_factory, relay) as uow:
        uow.enqueue("maintenance.probe", 2, flavour="x")
        assert publisher.sent == []  # nothing leaves before the commit
    assert publisher.sent == [("task", "maintenance.probe", {"args": [2], "kwargs": {"flavour": "x"}})]
    [row] = await _rows(session_factory)
    assert row.published_at is not None and row.attempts == 0


async def test_a_failed_publish_stays_pending_and_the_relay_sends_it_later(session_factory: Any) -> None:
    publisher = RecordingPublisher(fail_first=3)
    policy = RelayPolicy(grace=timedelta(0), first_backoff=timedelta(0))
    relay = OutboxRelay(session_factory, publisher, policy)
    async with UnitOfWork(session_factory, relay) as uow:
        uow.enqueue("maintenance.probe", "a")
        uow.enqueue("maintenance.probe", "b")
    rows = await _rows(session_factory)
    # The request still succeeded; both messages wait, the failure recorded.
    assert [r.published_at for r in rows] == [None, None]
    assert [r.attempts for r in rows] == [1, 1]
    assert all("broker down" in (r.last_error or "") for r in rows)

    assert await relay.relay_pending() == 0  # still down: the first one fails, the round stops
    assert await relay.relay_pending() == 0
    assert publisher.sent == []
    assert await relay.relay_pending() == 2  # back: both go, oldest first
    assert [p[2]["args"] for p in publisher.sent] == [["a"], ["b"]]
    rows = await _rows(session_factory)
    assert all(r.published_at is not None for r in rows)
    assert [r.attempts for r in rows] == [3, 1]
    assert await relay.relay_pending() == 0  # nothing is sent twice by the relay


async def test_the_relay_backs_off_exponentially(session_factory: Any) -> None:
    policy = RelayPolicy(
        grace=timedelta(0), first_backoff=timedelta(seconds=1), max_backoff=timedelta(seconds=5)
    )
    assert [policy.backoff(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]
    relay = OutboxRelay(session_factory, RecordingPublisher(fail_first=10), policy)
    async with session_factory() as session, session.begin():
        session.add(OutboxMessage(kind="task", name="maintenance.probe", payload={"args": []}))
    assert await relay.relay_pending() == 0
    [row] = await _rows(session_factory)
    assert row.attempts == 1
    assert timedelta(seconds=0.5) < row.available_at - row.created_at < timedelta(seconds=10)
    assert await relay.relay_pending() == 0  # not due yet: not even tried
    assert (await _rows(session_factory))[0].attempts == 1


async def test_the_relay_leaves_fresh_messages_to_the_fast_path(session_factory: Any) -> None:
    publisher = RecordingPublisher()
    relay = OutboxRelay(session_factory, publisher, RelayPolicy(grace=timedelta(hours=1)))
    async with session_factory() as session, session.begin():
        session.add(OutboxMessage(kind="task", name="maintenance.probe", payload={"args": []}))
    assert await relay.relay_pending() == 0
    assert publisher.sent == []


async def test_published_messages_are_purged_after_they_are_kept(session_factory: Any) -> None:
    relay = OutboxRelay(session_factory, RecordingPublisher())
    async with UnitOfWork(session_factory, relay) as uow:
        uow.enqueue("maintenance.probe")
        uow.enqueue("maintenance.probe")
    async with session_factory() as session, session.begin():
        first = (await _rows(session_factory))[0].id
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == first)
            .values(published_at=OutboxMessage.published_at - timedelta(days=2))
        )
        session.add(OutboxMessage(kind="task", name="maintenance.probe", payload={"args": []}))
    assert await relay.purge_published(timedelta(days=1)) == 1
    remaining = await _rows(session_factory)
    assert len(remaining) == 2 and first not in {r.id for r in remaining}
