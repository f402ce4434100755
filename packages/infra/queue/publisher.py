"""Hands outbox messages to the broker: Celery tasks to their queue, events to Redis pub/sub.
Blocking (kombu, redis-py), so callers run it off the event loop."""

from __future__ import annotations

import json
from typing import Any, Protocol


class TaskSender(Protocol):
    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...


class EventSender(Protocol):
    def publish(self, channel: str, message: str) -> Any: ...


class BrokerPublisher:
    def __init__(self, sender: TaskSender, events: EventSender | None = None) -> None:
        self.sender = sender
        self.events = events

    def publish(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        """Send one message or raise; never retries by itself (the outbox relay does, with backoff).

        ``task``: the Celery task ``name`` with the payload's args and kwargs. ``event``: the payload
        as JSON on the pub/sub channel ``name`` (nobody listening is not an error: pub/sub keeps
        nothing, and subscribers read what they missed from the event's table)."""
        if kind == "task":
            self.sender.send_task(
                name,
                args=payload.get("args", []),
                kwargs=payload.get("kwargs", {}),
                retry=False,
                # Job tasks report through their database rows, never Celery's result store; touching
                # that store here would make a publisher with Redis away wait on its reconnects.
                ignore_result=True,
            )
        elif kind == "event":
            if self.events is None:
                raise ValueError("this publisher has no Redis connection for events")
            self.events.publish(name, json.dumps(payload, separators=(",", ":")))
        else:
            raise ValueError(f"unknown outbox message kind {kind!r}")
