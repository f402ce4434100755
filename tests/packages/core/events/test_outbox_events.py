"""Outbox messages of both kinds through the real publisher: Celery tasks to the task sender,
events as JSON on their Redis pub/sub channel, on the fast path and through the relay."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from packages.core.events.outbox import OutboxRelay, RelayPolicy, event_message, task_message
from packages.core.uow import UnitOfWork
from packages.infra.db.models import OutboxMessage
from packages.infra.queue.publisher import BrokerPublisher


class RecordingSender:
    """Stands in for Celery's ``send_task`` so no worker receives these test tasks."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], dict[str, Any]]] = []

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        self.sent.append((name, list(args or []), dict(kwargs or {})))


async def _next_message(pubsub: Any, timeout_s: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                return dict(json.loads(message["data"]))


@pytest.fixture
async def subscribed(api_app: Any) -> Any:
    resources = api_app.state.resources
    channel = f"deployment:{uuid.uuid4()}"
    pubsub = resources.redis.pubsub()
    await pubsub.subscribe(channel)
    yield channel, pubsub
    await pubsub.aclose()


async def test_the_fast_path_publishes_tasks_and_events(api_app: Any, subscribed: Any) -> None:
    channel, pubsub = subscribed
    resources = api_app.state.resources
    sender = RecordingSender()
    relay = OutboxRelay(resources.session_factory, BrokerPublisher(sender, resources.event_redis))
    async with UnitOfWork(resources.session_factory, relay) as uow:
        uow.enqueue("maintenance.probe", 7, flavour="fast")
        uow.publish_event(channel, {"seq": 1, "type": "status"})
        uow.publish_event(channel, {"seq": 2, "type": "pnl"})
    assert sender.sent == [("maintenance.probe", [7], {"flavour": "fast"})]
    assert [await _next_message(pubsub), await _next_message(pubsub)] == [
        {"seq": 1, "type": "status"},
        {"seq": 2, "type": "pnl"},
    ]
    async with resources.session_factory() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.name == channel)))
    assert [(r.kind, r.published_at is not None) for r in rows] == [("event", True), ("event", True)]


async def test_the_relay_publishes_what_the_fast_path_could_not(api_app: Any, subscribed: Any) -> None:
    channel, pubsub = subscribed
    resources = api_app.state.resources
    # Committed, never published: the process died between commit and publish.
    async with resources.session_factory() as session, session.begin():
        task = task_message("maintenance.probe", ["relayed"], {})
        event = event_message(channel, {"seq": 9, "type": "fill"})
        session.add_all([task, event])
    sender = RecordingSender()
    relay = OutboxRelay(
        resources.session_factory,
        BrokerPublisher(sender, resources.event_redis),
        RelayPolicy(grace=timedelta(0)),
    )
    assert await relay.relay_pending() >= 2
    assert ("maintenance.probe", ["relayed"], {}) in sender.sent
    assert await _next_message(pubsub) == {"seq": 9, "type": "fill"}
    async with resources.session_factory() as session:
        rows = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_([task.id, event.id])))
        )
    assert all(row.published_at is not None for row in rows)


def test_the_publisher_refuses_what_it_cannot_send() -> None:
    with pytest.raises(ValueError, match="unknown outbox message kind"):
        BrokerPublisher(RecordingSender()).publish("carrier-pigeon", "x", {})
    with pytest.raises(ValueError, match="no Redis connection"):
        BrokerPublisher(RecordingSender()).publish("event", "deployment:x", {})
