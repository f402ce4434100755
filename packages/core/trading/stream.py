"""A deployment's live stream: every stored event after the client's last one, then the live ones.

The stream subscribes to ``deployment:{id}`` *before* it reads the stored events, so an event
committed meanwhile is both read and received; events are de-duplicated by ``seq`` and sent in
``seq`` order, so none is lost or sent twice:

* a live event at or below the last one sent is a duplicate (the outbox delivers at least once, and
  the backlog may already have held it) and is dropped;
* a live event further ahead than the next one means some were published late or lost (pub/sub
  keeps nothing): the stream reads the missing ones from the database first (an event's ``seq`` is
  taken under the deployment's row lock, so when ``n`` is committed, every event before it is);
* when nothing arrives for ``heartbeat_s`` the stream looks in the database for events whose
  publication is late, and yields a heartbeat (``None``) when there are none.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.trading.events import DeploymentEventOut, channel, event_out
from packages.core.trading.repository import DeploymentRepository, EventRepository

log = logging.getLogger("minsy.trading.stream")

# How long the stream waits for Redis to confirm its subscription.
_SUBSCRIBE_TIMEOUT_S = 5.0


class DeploymentStream:
    def __init__(
        self, resources: Resources, principal: Principal, deployment_id: uuid.UUID, after_seq: int
    ) -> None:
        self.resources = resources
        self.principal = principal
        self.deployment_id = deployment_id
        self.last_seq = after_seq
        settings = resources.settings.trading
        self.heartbeat_s = settings.stream_heartbeat_s
        self.buffer = settings.stream_buffer_events
        self._pubsub: Any = None

    async def open(self) -> None:
        """Check the caller owns the deployment (``NotFound`` otherwise) and subscribe to its channel,
        returning once Redis has confirmed the subscription."""
        async with self.resources.unit_of_work() as uow:
            await DeploymentRepository(uow.session, self.principal.user_id).get(self.deployment_id)
        pubsub = self.resources.redis.pubsub()
        try:
            await pubsub.subscribe(channel(self.deployment_id))
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):
                while True:
                    message = await pubsub.get_message(timeout=_SUBSCRIBE_TIMEOUT_S)
                    if message is not None and message["type"] == "subscribe":
                        break
        except BaseException:
            await pubsub.aclose()
            raise
        self._pubsub = pubsub

    async def close(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            await pubsub.aclose()

    async def events(self) -> AsyncIterator[DeploymentEventOut | None]:
        """Events in ``seq`` order, each once; ``None`` for a heartbeat."""
        if self._pubsub is None:
            raise RuntimeError("open() the stream first")
        async for event in self._stored(until=None):
            yield event
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=self.heartbeat_s)
            if message is None:
                late = False
                async for event in self._stored(until=None):
                    late = True
                    yield event
                if not late:
                    yield None
                continue
            live = self._parse(message.get("data"))
            if live is None or live.seq <= self.last_seq:
                continue
            if live.seq > self.last_seq + 1:
                async for stored in self._stored(until=live.seq - 1):
                    yield stored
            if live.seq > self.last_seq:
                self.last_seq = live.seq
                yield live

    async def _stored(self, until: int | None) -> AsyncIterator[DeploymentEventOut]:
        """Stored events after the last one sent (up to ``until``), a buffer's worth per query."""
        while until is None or self.last_seq < until:
            async with self.resources.session_factory() as session:
                rows = await EventRepository(session).after(self.deployment_id, self.last_seq, self.buffer)
            for row in rows:
                if until is not None and row.seq > until:
                    return
                self.last_seq = row.seq
                yield event_out(row)
            if len(rows) < self.buffer:
                return

    def _parse(self, data: Any) -> DeploymentEventOut | None:
        try:
            event = DeploymentEventOut.model_validate_json(data)
        except (ValidationError, TypeError):
            log.warning(
                "unreadable deployment event on the stream", extra={"deployment_id": str(self.deployment_id)}
            )
            return None
        return event if event.deployment_id == self.deployment_id else None
